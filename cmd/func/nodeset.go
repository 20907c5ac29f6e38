package main

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// foldHosts writes host names the way clush's nodesets do, so that 500
// hosts that answered alike fit on a line: names that differ only in
// their last number fold into one range expression,
// web[1-3,7].example.org. Zero-padded numbers fold only with numbers
// of the same width (node[01-09]). Names without a number stay as they
// are. The result is sorted.
func foldHosts(hosts []string) []string {
	type key struct {
		prefix, suffix string
		width          int // > 0 for zero-padded numbers
	}
	type group struct {
		key  key
		nums []int
		name string // a name without a number
	}
	byKey := map[key]*group{}
	var groups []*group
	// Zero-padded widths seen per prefix and suffix: an unpadded number
	// as wide or wider (node10 beside node01) prints the same in them.
	padded := map[key][]int{}
	for _, h := range hosts {
		if prefix, digits, suffix, ok := lastNumber(h); ok && len(digits) > 1 && digits[0] == '0' {
			k := key{prefix: prefix, suffix: suffix}
			padded[k] = append(padded[k], len(digits))
		}
	}
	for _, h := range hosts {
		prefix, digits, suffix, ok := lastNumber(h)
		if !ok {
			groups = append(groups, &group{name: h})
			continue
		}
		n, err := strconv.Atoi(digits)
		if err != nil { // too many digits for an int: leave the name alone
			groups = append(groups, &group{name: h})
			continue
		}
		k := key{prefix: prefix, suffix: suffix}
		if len(digits) > 1 && digits[0] == '0' {
			k.width = len(digits)
		} else {
			for _, w := range padded[k] {
				if w <= len(digits) && w > k.width {
					k.width = w
				}
			}
		}
		g := byKey[k]
		if g == nil {
			g = &group{key: k}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.nums = append(g.nums, n)
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if g.name != "" {
			out = append(out, g.name)
			continue
		}
		slices.Sort(g.nums)
		g.nums = slices.Compact(g.nums)
		num := func(n int) string { return fmt.Sprintf("%0*d", g.key.width, n) }
		if len(g.nums) == 1 {
			out = append(out, g.key.prefix+num(g.nums[0])+g.key.suffix)
			continue
		}
		var ranges []string
		for i := 0; i < len(g.nums); {
			j := i
			for j+1 < len(g.nums) && g.nums[j+1] == g.nums[j]+1 {
				j++
			}
			if i == j {
				ranges = append(ranges, num(g.nums[i]))
			} else {
				ranges = append(ranges, num(g.nums[i])+"-"+num(g.nums[j]))
			}
			i = j + 1
		}
		out = append(out, g.key.prefix+"["+strings.Join(ranges, ",")+"]"+g.key.suffix)
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Compare(a, b) })
	return out
}

// lastNumber splits name around its last run of digits.
func lastNumber(name string) (prefix, digits, suffix string, ok bool) {
	end := strings.LastIndexAny(name, "0123456789")
	if end < 0 {
		return "", "", "", false
	}
	start := end
	for start > 0 && name[start-1] >= '0' && name[start-1] <= '9' {
		start--
	}
	return name[:start], name[start : end+1], name[end+1:], true
}

// hostList is foldHosts joined with commas, cut after limit folded
// entries with a count of the rest ("limit" < 1 means no limit).
func hostList(hosts []string, limit int) string {
	folded := foldHosts(hosts)
	if limit > 0 && len(folded) > limit {
		rest := 0
		for _, f := range folded[limit:] {
			rest += foldedCount(f)
		}
		return strings.Join(folded[:limit], ",") + fmt.Sprintf(" and %d more", rest)
	}
	return strings.Join(folded, ",")
}

// foldedCount is how many hosts one folded entry stands for.
func foldedCount(f string) int {
	open, close := strings.IndexByte(f, '['), strings.IndexByte(f, ']')
	if open < 0 || close < open {
		return 1
	}
	n := 0
	for _, r := range strings.Split(f[open+1:close], ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, _ := strconv.Atoi(lo)
		b, _ := strconv.Atoi(hi)
		if isRange {
			n += b - a + 1
		} else {
			n++
		}
	}
	return n
}
