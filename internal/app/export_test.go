package app

// Waiting returns how many stock requests are queued or in a batch.
func Waiting(s *Service) int64 { return s.pipe.Waiting() }
