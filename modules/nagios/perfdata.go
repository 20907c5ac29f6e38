package nagios

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/gofunc/gofunc/events"
)

// Perf is one performance data item of a plugin's output, as the Nagios
// plugin guidelines define it: 'label'=value[UOM];[warn];[crit];[min];[max]
type Perf struct {
	Label string `xmlrpc:"label"` // unquoted: "/ used"
	// Value is the measured value; 0 when Unknown.
	Value float64 `xmlrpc:"value"`
	// Unknown reports the value "U" (the plugin could not measure).
	Unknown bool `xmlrpc:"unknown"`
	// UOM is the unit of measurement: "", "s", "ms", "us", "%", "B",
	// "KB", "MB", "GB", "TB", "c", ...
	UOM string `xmlrpc:"uom"`
	// Warn and Crit are threshold ranges as printed ("10", "10:20",
	// "@~:5"); Min and Max are numbers as printed. Empty when absent.
	Warn string `xmlrpc:"warn"`
	Crit string `xmlrpc:"crit"` // critical range
	Min  string `xmlrpc:"min"`  // minimum possible value
	Max  string `xmlrpc:"max"`  // maximum possible value
}

// Output is a plugin's standard output, split as the guidelines say: the
// first line's text, the long text of the following lines, and the
// performance data found after a '|' on the first line and from the
// first later line holding a '|' to the end.
type Output struct {
	Text     string // the first line, before any '|'
	LongText string // the following lines of text
	Perfdata string // every perfdata part, joined by spaces
}

// ParseOutput splits a plugin's output.
func ParseOutput(out string) Output {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var o Output
	var perf, long []string
	first, p, _ := strings.Cut(lines[0], "|")
	o.Text = strings.TrimSpace(first)
	perf = append(perf, p)
	inPerf := false
	for _, line := range lines[1:] {
		line = strings.TrimRight(line, "\r")
		if inPerf {
			perf = append(perf, line)
			continue
		}
		if text, p, ok := strings.Cut(line, "|"); ok {
			long = append(long, text)
			perf = append(perf, p)
			inPerf = true
			continue
		}
		long = append(long, line)
	}
	o.LongText = strings.TrimRight(strings.Join(long, "\n"), " \n")
	o.Perfdata = strings.TrimSpace(strings.Join(perf, " "))
	return o
}

// Limits of the perfdata parser.
const (
	maxPerfItems = 1000
	maxLabelLen  = 1024
)

var (
	numberPattern = `[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?`
	// The unit holds no digits and does not start with '.', so that value
	// and unit can always be told apart again ("0." + "." would not be).
	valuePattern = regexp.MustCompile(`^(` + numberPattern + `|U)((?:[^0-9;.][^0-9;]*)?)$`)
	numberOnly   = regexp.MustCompile(`^` + numberPattern + `$`)
	rangePattern = regexp.MustCompile(`^@?(?:~|` + numberPattern + `)?(?::(?:` + numberPattern + `)?)?$`)
)

// ErrPerfdata reports a malformed performance data item; ParsePerfdata
// wraps it with the item's position.
var ErrPerfdata = errors.New("malformed perfdata")

// ParsePerfdata parses space-separated performance data items. Labels
// holding spaces or '=' are quoted with single quotes, a quote inside
// being doubled ('it”s'). Malformed items are skipped; the error (which
// wraps ErrPerfdata) names the first of them, and the good items are
// returned all the same.
func ParsePerfdata(s string) ([]Perf, error) {
	var items []Perf
	var firstErr error
	for len(s) > 0 && len(items) < maxPerfItems {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			break
		}
		p, rest, err := parseItem(s)
		s = rest
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		items = append(items, p)
	}
	return items, firstErr
}

// parseItem parses the item at the start of s and returns the rest. On
// error the rest starts after the bad item's next unquoted space.
func parseItem(s string) (Perf, string, error) {
	var p Perf
	label, rest, err := parseLabel(s)
	if err != nil {
		return p, skipItem(s), err
	}
	p.Label = label
	end := strings.IndexAny(rest, " \t\r\n")
	if end < 0 {
		end = len(rest)
	}
	field, rest := rest[:end], rest[end:]
	parts := strings.Split(field, ";")
	for len(parts) > 5 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1] // tolerate trailing semicolons
	}
	if len(parts) > 5 {
		return p, rest, fmt.Errorf("%w: %q has more than 5 fields", ErrPerfdata, label)
	}
	m := valuePattern.FindStringSubmatch(parts[0])
	if m == nil {
		return p, rest, fmt.Errorf("%w: %q has the bad value %q", ErrPerfdata, label, parts[0])
	}
	if m[1] == "U" {
		p.Unknown = true
	} else if p.Value, err = strconv.ParseFloat(m[1], 64); err != nil {
		return p, rest, fmt.Errorf("%w: %q has the bad value %q", ErrPerfdata, label, m[1])
	}
	p.UOM = m[2]
	fields := []*string{&p.Warn, &p.Crit, &p.Min, &p.Max}
	for i, f := range parts[1:] {
		pattern := rangePattern
		if i >= 2 {
			pattern = numberOnly
		}
		if f != "" && !pattern.MatchString(f) {
			return p, rest, fmt.Errorf("%w: %q has the bad field %q", ErrPerfdata, label, f)
		}
		*fields[i] = f
	}
	return p, rest, nil
}

// parseLabel reads "label=" or "'quoted label'=" and returns the label and
// what follows the '='.
func parseLabel(s string) (string, string, error) {
	if s[0] == '\'' {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] != '\'' {
				b.WriteByte(s[i])
				continue
			}
			if i+1 < len(s) && s[i+1] == '\'' { // doubled quote
				b.WriteByte('\'')
				i++
				continue
			}
			if i+1 >= len(s) || s[i+1] != '=' {
				return "", "", fmt.Errorf("%w: no '=' after the quoted label", ErrPerfdata)
			}
			return checkLabel(b.String(), s[i+2:])
		}
		return "", "", fmt.Errorf("%w: unterminated quoted label", ErrPerfdata)
	}
	eq := strings.IndexByte(s, '=')
	sp := strings.IndexAny(s, " \t\r\n")
	if eq < 0 || (sp >= 0 && sp < eq) {
		return "", "", fmt.Errorf("%w: item without '='", ErrPerfdata)
	}
	if strings.ContainsRune(s[:eq], '\'') {
		return "", "", fmt.Errorf("%w: quote inside an unquoted label", ErrPerfdata)
	}
	return checkLabel(s[:eq], s[eq+1:])
}

func checkLabel(label, rest string) (string, string, error) {
	if label == "" || len(label) > maxLabelLen {
		return "", "", fmt.Errorf("%w: empty or overlong label", ErrPerfdata)
	}
	return label, rest, nil
}

// skipItem drops the item at the start of s: up to the next whitespace
// outside quotes.
func skipItem(s string) string {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			quoted = !quoted
		case !quoted && (c == ' ' || c == '\t' || c == '\r' || c == '\n'):
			return s[i:]
		}
	}
	return ""
}

// String formats the item as a plugin would print it, quoting the label
// when needed; ParsePerfdata reads it back unchanged.
func (p Perf) String() string { return events.Perf(p).String() }
