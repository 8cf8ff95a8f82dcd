package advisory

import "fmt"

// maxProblems bounds how many problems a parse keeps in detail; all of
// them are counted.
const maxProblems = 100

// Problem is one bad record or line that a parser skipped.
type Problem struct {
	File string // file or zip member name, "" if unknown
	Line int    // 1-based line, 0 if not known
	Err  error
}

func (p Problem) Error() string {
	switch {
	case p.File != "" && p.Line > 0:
		return fmt.Sprintf("%s line %d: %v", p.File, p.Line, p.Err)
	case p.Line > 0:
		return fmt.Sprintf("line %d: %v", p.Line, p.Err)
	case p.File != "":
		return fmt.Sprintf("%s: %v", p.File, p.Err)
	}
	return p.Err.Error()
}

func (p Problem) Unwrap() error { return p.Err }

// Problems counts the bad records of one parse and keeps the first
// maxProblems of them.
type Problems struct {
	Bad   int       // number of bad records or lines skipped
	First []Problem // the first of them, at most 100
}

func (ps *Problems) add(file string, line int, err error) {
	ps.Bad++
	if len(ps.First) < maxProblems {
		ps.First = append(ps.First, Problem{File: file, Line: line, Err: err})
	}
}

// merge adds the problems of o to ps.
func (ps *Problems) merge(o Problems) {
	ps.Bad += o.Bad
	for _, p := range o.First {
		if len(ps.First) >= maxProblems {
			break
		}
		ps.First = append(ps.First, p)
	}
}

// IsCVE reports whether s is a CVE ID in the syntax of the CVE program
// (and of the KEV schema): "CVE-", a four-digit year, "-", then 4 to 19
// digits.
func IsCVE(s string) bool {
	if len(s) < 13 || len(s) > 28 || s[:4] != "CVE-" || s[8] != '-' {
		return false
	}
	return allDigits(s[4:8]) && allDigits(s[9:])
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
