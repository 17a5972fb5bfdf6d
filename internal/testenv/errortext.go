package testenv

import "strings"

// libraryText are the marks of a Go library's error text: a package prefix
// ("json: unknown field", "strconv.ParseInt: parsing"), or wording only
// the standard decoders use.
var libraryText = []string{"json: ", "strconv.", "proto: ", "protojson", "csv: ", "time: ", "url: ", "http: ",
	"sql: ", "gorm", "unmarshal", "cannot unmarshal", "Go value", "Go struct"}

// LibraryText returns the mark of a library's text msg carries, or "" if
// it reads as the service's own: an error message a client sees never
// carries one.
func LibraryText(msg string) string {
	for _, m := range libraryText {
		if strings.Contains(msg, m) {
			return m
		}
	}
	return ""
}
