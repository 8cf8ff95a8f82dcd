package deb

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// AptConfig is apt's configuration tree (apt-pkg/contrib/configuration.cc):
// items named by "::"-separated tags, compared case-insensitively, each with
// a value and ordered children. A list is an item whose children have empty
// tags ("Key:: "v";" appends one). The zero value is an empty tree.
type AptConfig struct {
	// Root is prepended to the path of every #include directive, so that
	// a configuration read from a mounted system includes that system's
	// files. Empty means paths are used as written, as apt does.
	Root string
	// Warn, when set, receives the warnings and notices apt prints while
	// reading sources and preferences with this configuration (apt's "W:"
	// and "N:" lines), e.g. an unknown pin type or an ignored file name.
	Warn func(msg string)

	top aptItem
}

type aptItem struct {
	tag, value string
	parent     *aptItem
	kids       []*aptItem
}

// fullTag is the item's "::"-joined name, as apt-config dump prints it.
func (it *aptItem) fullTag() string {
	if it.parent == nil || it.parent.parent == nil {
		return it.tag
	}
	return it.parent.fullTag() + "::" + it.tag
}

// child finds the child tagged tag (ASCII case-insensitively) or, with
// create, appends it. An empty tag never matches: it makes a list element.
func (it *aptItem) child(tag string, create bool) *aptItem {
	if tag != "" {
		for _, k := range it.kids {
			if aptEqualFold(k.tag, tag) {
				return k
			}
		}
	}
	if !create {
		return nil
	}
	k := &aptItem{tag: tag, parent: it}
	it.kids = append(it.kids, k)
	return k
}

// lookup is Configuration::Lookup, including its quirks: after a "::" the
// next character never starts another separator, and empty segments
// always create new (list) items.
func (c *AptConfig) lookup(name string, create bool) *aptItem {
	it := &c.top
	start := 0
	for i := 0; len(name)-i >= 2; i++ {
		if name[i] == ':' && name[i+1] == ':' {
			if it = it.child(name[start:i], create); it == nil {
				return nil
			}
			start = i + 2
			i = start
		}
	}
	if start == len(name) && !create {
		return nil
	}
	return it.child(name[start:], create)
}

// Find returns the value of key, or def when it is unset or empty.
func (c *AptConfig) Find(key, def string) string {
	if it := c.lookup(key, false); it != nil && it.value != "" {
		return it.value
	}
	return def
}

// FindB returns key as a boolean using apt's StringToBool: 0 and 1 (in any
// base strtol accepts), no/false/without/off/disable and
// yes/true/with/on/enable (case-insensitive); anything else gives def.
func (c *AptConfig) FindB(key string, def bool) bool {
	v := c.Find(key, "")
	if v == "" {
		return def
	}
	d := 0
	if def {
		d = 1
	}
	return aptStringToBool(v, d) != 0
}

// FindI returns key as an integer as apt's FindI does (strtol with base 0,
// the leading number of the value), or def.
func (c *AptConfig) FindI(key string, def int) int {
	v := c.Find(key, "")
	n, end, _ := aptStrtol(v, 0)
	if v == "" || end == 0 {
		return def
	}
	return int(int32(n))
}

// FindList returns the list at key (apt's FindVector): the values of its
// children, or its own value split at commas when it has one.
func (c *AptConfig) FindList(key string) []string {
	it := c.lookup(key, false)
	if it == nil {
		return nil
	}
	if it.value != "" {
		return aptVectorize(it.value, ',')
	}
	var out []string
	for _, k := range it.kids {
		out = append(out, k.value)
	}
	return out
}

// Exists reports whether key is in the tree (even with an empty value).
func (c *AptConfig) Exists(key string) bool { return c.lookup(key, false) != nil }

// Set sets key to val, creating it; a key ending in "::" appends a list
// element.
func (c *AptConfig) Set(key, val string) { c.lookup(key, true).value = val }

// cndSet sets key only when it has no value yet (apt's CndSet).
func (c *AptConfig) cndSet(key, val string) {
	if it := c.lookup(key, true); it.value == "" {
		it.value = val
	}
}

// Clear empties key and removes everything below it (apt's #clear).
func (c *AptConfig) Clear(key string) {
	if it := c.lookup(key, false); it != nil {
		it.value, it.kids = "", nil
	}
}

// FindFile resolves a file name as apt's FindFile: a relative value is
// prefixed by the values of its parents (Dir::Etc::sourcelist under
// Dir::Etc under Dir gives /etc/apt/sources.list), and RootDir, when set in
// the configuration, is prepended. It does not prepend c.Root.
func (c *AptConfig) FindFile(key, def string) string {
	result := c.Find("RootDir", "")
	if result != "" && !strings.HasSuffix(result, "/") {
		result += "/"
	}
	it := c.lookup(key, false)
	if it == nil || it.value == "" {
		return aptNormalize(result + def)
	}
	val := it.value
	for ; it.parent != nil; it = it.parent {
		pv := it.parent.value
		if pv == "" {
			continue
		}
		if strings.HasPrefix(val, "/") {
			if strings.HasPrefix(val, "/dev/null") {
				val = "/dev/null"
			}
			break
		}
		if strings.HasPrefix(val, "~/") || strings.HasPrefix(val, "./") || strings.HasPrefix(val, "../") {
			break
		}
		if !strings.HasSuffix(pv, "/") {
			val = "/" + val
		}
		val = pv + val
	}
	return aptNormalize(result + val)
}

// FindDir is FindFile with a trailing "/" (except for /dev/null).
func (c *AptConfig) FindDir(key, def string) string {
	res := c.FindFile(key, def)
	if strings.HasSuffix(res, "/") || strings.HasSuffix(res, "/dev/null") {
		return res
	}
	return res + "/"
}

// aptNormalize is flNormalize: "/./" and "//" collapse, and anything after
// a leading /dev/null is dropped.
func aptNormalize(p string) string {
	for strings.Contains(p, "/./") {
		p = strings.Replace(p, "/./", "/", 1)
	}
	for strings.Contains(p, "//") {
		p = strings.Replace(p, "//", "/", 1)
	}
	if strings.HasPrefix(p, "/dev/null") {
		return "/dev/null"
	}
	return p
}

// Dump writes the tree as `apt-config dump` does ("Key "value";" per item,
// in tree order, keys %-quoted as apt quotes them).
func (c *AptConfig) Dump(w io.Writer) error {
	bw := bufio.NewWriter(w)
	c.walk(func(it *aptItem) {
		fmt.Fprintf(bw, "%s \"%s\";\n", aptQuote(it.fullTag(), "=\"\n"), it.value)
	})
	return bw.Flush()
}

// walk visits every item in apt's tree order (pre-order).
func (c *AptConfig) walk(fn func(*aptItem)) {
	var visit func(*aptItem)
	visit = func(it *aptItem) {
		fn(it)
		for _, k := range it.kids {
			visit(k)
		}
	}
	for _, k := range c.top.kids {
		visit(k)
	}
}

// aptQuote is apt's QuoteString: bad, control, space, non-ASCII and '%'
// bytes become %xx.
func aptQuote(s, bad string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if strings.IndexByte(bad, ch) >= 0 || ch == '%' || ch <= 0x20 || ch >= 0x7f {
			fmt.Fprintf(&b, "%%%02x", ch)
		} else {
			b.WriteByte(ch)
		}
	}
	return b.String()
}
