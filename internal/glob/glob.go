// Package glob matches names against Func's target patterns: Python's
// fnmatch syntax, compared case-insensitively:
//
//	pattern  matches
//	-------  ------------------------------------------------------
//	*        any run of characters, including none and including "."
//	?        any one character
//	[seq]    one character in seq (ranges like a-z allowed)
//	[!seq]   one character not in seq
//
// A "[" with no closing "]" is a literal "[", as in fnmatch.
package glob

// Match reports whether name matches pattern, ignoring ASCII case. It
// works on bytes: names are ASCII, and a non-ASCII byte only matches
// itself, "?" or "*".
// It never panics and runs in O(len(pattern)·len(name)) time at worst.
func Match(pattern, name string) bool {
	p, n := []byte(lower(pattern)), []byte(lower(name))
	// Classic wildcard matching with single-star backtracking: on a
	// mismatch, retry from the last "*" with one more character eaten.
	pi, ni := 0, 0
	starP, starN := -1, 0
	for ni < len(n) {
		if pi < len(p) {
			switch p[pi] {
			case '*':
				starP, starN = pi, ni
				pi++
				continue
			case '?':
				pi++
				ni++
				continue
			case '[':
				if ok, width, valid := matchClass(p[pi:], n[ni]); valid {
					if ok {
						pi += width
						ni++
						continue
					}
				} else if n[ni] == '[' {
					pi++
					ni++
					continue
				}
			default:
				if p[pi] == n[ni] {
					pi++
					ni++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starN++
		pi, ni = starP+1, starN
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchClass matches c against the class at the start of p ("[...]").
// valid is false when the class has no closing bracket; width is the
// class's length in bytes.
func matchClass(p []byte, c byte) (ok bool, width int, valid bool) {
	i := 1
	negate := false
	if i < len(p) && p[i] == '!' {
		negate = true
		i++
	}
	start := i
	for ; i < len(p); i++ {
		if p[i] == ']' && i > start {
			break
		}
	}
	if i >= len(p) {
		return false, 0, false
	}
	set := p[start:i]
	for j := 0; j < len(set); j++ {
		if j+2 < len(set) && set[j+1] == '-' {
			if set[j] <= c && c <= set[j+2] {
				ok = true
			}
			j += 2
			continue
		}
		if set[j] == c {
			ok = true
		}
	}
	return ok != negate, i + 1, true
}

// lower lower-cases ASCII letters only: host names are ASCII, and
// Unicode case folding would let look-alikes match.
func lower(s string) string {
	b := []byte(s)
	changed := false
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
			changed = true
		}
	}
	if !changed {
		return s
	}
	return string(b)
}

// HasMeta reports whether pattern has any glob metacharacter.
func HasMeta(pattern string) bool {
	for _, c := range pattern {
		switch c {
		case '*', '?', '[':
			return true
		}
	}
	return false
}
