package inventory

// Observer is told of the stock transactions the service commits, for
// metrics. Its methods run on the commit path and must not block.
type Observer interface {
	// Committed is called after each committed stock transaction: requests
	// is how many requests it served (more than one when combined), and
	// movements are the ledger rows it wrote.
	Committed(requests int, movements []Movement)
}
