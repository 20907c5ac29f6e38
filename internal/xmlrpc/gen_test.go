package xmlrpc

import (
	"strconv"
	"strings"
	"testing"
)

// docGen writes an XML-RPC document whose every choice comes from the
// fuzzer's bytes: valid documents, decorated the many ways XML allows
// (comments, CDATA, references, namespaces, \r\n, <x/>), now and then
// broken by one stray byte. Random bytes alone seldom get past the first
// few tags; this gets the two decoders to agree on deep documents.
type docGen struct {
	data []byte
	b    strings.Builder
}

func (g *docGen) next() byte {
	if len(g.data) == 0 {
		return 0
	}
	c := g.data[0]
	g.data = g.data[1:]
	return c
}

func (g *docGen) pick(n int) int { return int(g.next()) % n }

// gap writes what may come between two tags.
func (g *docGen) gap() {
	switch g.pick(64) {
	case 0, 1, 2, 3:
		g.b.WriteString("\n  ")
	case 4, 5:
		g.b.WriteString("\r\n")
	case 6, 7:
		g.b.WriteString("<!-- " + g.word() + " -->")
	case 8:
		g.b.WriteString(string(g.next())) // a stray byte: mostly an error
	}
}

// Values of each type, mostly valid; now and then any word instead.
var genValues = map[string][]string{
	"int":     {"0", "-1", "+7", " 42 ", "2147483647", "-2147483648", "007"},
	"i8":      {"0", "-9223372036854775808", "9223372036854775807", "1099511627776", " 5 "},
	"i2":      {"-32768", "32767", "1"},
	"i1":      {"-128", "127", "0"},
	"double":  {"1.5", "-0.0", ".5", "1e+20", "3", " 2.5 ", "-1.5E-3"},
	"boolean": {"0", "1", " 1 "},
	"base64":  {"", "aGk=", "aGVs\nbG8=", " YQ== ", "AAAA"},
	"dateTime.iso8601": {"20240229T23:59:58", "2024-02-29T23:59:58", "20240101T00:00:00Z",
		"20240301T01:00:00+02:00", "2024-03-01T01:00:00-0130", " 19700101T00:00:00 "},
}

// typed returns a value for an element of type tag.
func (g *docGen) typed(tag string) string {
	if g.pick(8) == 0 {
		return g.word()
	}
	switch tag {
	case "i4", "ex:i8":
		tag = map[string]string{"i4": "int", "ex:i8": "i8"}[tag]
	}
	vals, ok := genValues[tag]
	if !ok {
		return g.word()
	}
	return vals[g.pick(len(vals))]
}

var genWords = []string{"", "a", "web1", "  x ", "a&b", "<tag>", "]]>", "é", "\u00a0", "\U0001F600", "\t\n", "\r\n", "x\ry",
	"-1", "+7", "007", "2147483648", "-2147483649", "9223372036854775808", "1.5e3", ".5", "1e400", "NaN",
	"aGk=", "aG k=", "20240229T23:59:58", "2024-02-30T00:00:00Z", "20240101T00:00:00+0100", "0", "1", "true"}

func (g *docGen) word() string { return genWords[g.pick(len(genWords))] }

// text writes s as character data, each piece plain, as a reference or
// in a CDATA section.
func (g *docGen) text(s string) {
	for _, r := range s {
		switch c := string(r); {
		case c == "<" || c == "&":
			if g.pick(2) == 0 {
				g.b.WriteString(map[string]string{"<": "&lt;", "&": "&amp;"}[c])
			} else {
				g.b.WriteString("&#" + strconv.Itoa(int(r)) + ";")
			}
		case g.pick(16) == 0:
			g.b.WriteString("&#x" + strconv.FormatInt(int64(r), 16) + ";")
		case g.pick(16) == 0 && c != "]":
			g.b.WriteString("<![CDATA[" + c + "]]>")
		case g.pick(32) == 0:
			g.b.WriteString("<!---->" + c)
		default:
			g.b.WriteString(c)
		}
	}
}

// elem writes <name>, body, </name>, or <name/> when the body is empty.
func (g *docGen) elem(name string, body func()) {
	open := name
	switch g.pick(10) {
	case 0:
		open += ` xmlns:ex="urn:x"`
	case 1:
		open += " "
	case 2:
		open += ` xmlns=""`
	}
	if body == nil && g.pick(2) == 0 {
		g.b.WriteString("<" + open + "/>")
		return
	}
	g.b.WriteString("<" + open + ">")
	if body != nil {
		body()
	}
	g.b.WriteString("</" + name + ">")
}

func (g *docGen) value(depth int) {
	g.elem("value", func() {
		g.gap()
		kinds := 11
		if depth > 3 {
			kinds = 9 // no more arrays or structs
		}
		switch g.pick(kinds) {
		case 0:
			g.text(g.word()) // untyped
		case 1:
			tag := []string{"int", "i4", "i8", "ex:i8", "i2", "i1"}[g.pick(6)]
			g.elem(tag, func() { g.text(g.typed(tag)) })
		case 2:
			g.elem("string", func() { g.text(g.word()) })
		case 3:
			g.elem("double", func() { g.text(g.typed("double")) })
		case 4:
			g.elem("boolean", func() { g.text(g.typed("boolean")) })
		case 5:
			g.elem("base64", func() { g.text(g.typed("base64")) })
		case 6:
			g.elem("dateTime.iso8601", func() { g.text(g.typed("dateTime.iso8601")) })
		case 7:
			g.elem([]string{"nil", "ex:nil"}[g.pick(2)], nil)
		case 8:
			g.elem("string", nil)
		case 9:
			g.elem("array", func() {
				g.gap()
				g.elem("data", func() {
					for range g.pick(4) {
						g.gap()
						g.value(depth + 1)
					}
				})
			})
		case 10:
			g.elem("struct", func() {
				for range g.pick(4) {
					g.gap()
					g.elem("member", func() {
						g.elem("name", func() { g.text([]string{"pid", "user", "a b", "", "é", g.word()}[g.pick(6)]) })
						g.gap()
						g.value(depth + 1)
					})
				}
			})
		}
		g.gap()
	})
}

func (g *docGen) document() []byte {
	if g.pick(2) == 0 {
		g.b.WriteString(`<?xml version="1.0"?>`)
	}
	g.gap()
	if g.pick(3) == 0 {
		g.elem("methodResponse", func() {
			if g.pick(4) == 0 {
				g.elem("fault", func() { g.value(0) })
				return
			}
			g.elem("params", func() { g.elem("param", func() { g.value(0) }) })
		})
	} else {
		g.elem("methodCall", func() {
			g.elem("methodName", func() { g.text([]string{"test.echo", " a.b ", "a:b-c_d", "a b"}[g.pick(4)]) })
			g.gap()
			g.elem("params", func() {
				for range g.pick(4) {
					g.gap()
					g.elem("param", func() { g.value(0) })
				}
			})
		})
	}
	g.gap()
	return []byte(g.b.String())
}

func FuzzDecoderAgreesGenerated(f *testing.F) {
	f.Add([]byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b"), uint8(0))
	f.Add([]byte("\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a\x0a"), uint8(3))
	f.Add([]byte("\x01\x09\x05\x03\x02\x07\x0b\x04\x06\x08\x0a\x01\x02\x03"), uint8(7))
	f.Fuzz(func(t *testing.T, program []byte, chunk uint8) {
		g := &docGen{data: program}
		checkAgreement(t, g.document(), int(chunk%16)+1)
	})
}
