package xmlrpc

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"hash"
	"io"
)

// MaxHeadBytes bounds the part of a call before the end of its
// </methodName>: the XML declaration, comments and the name. A call
// that has not named its method within that many bytes is refused with
// CodeTooLarge, so that judging a call by its name never buffers more.
const MaxHeadBytes = 16 << 10

// CallReader decodes a <methodCall> in two stages, so that a server can
// judge a call by its method name before it pays for its parameters:
//
//	cr, err := xmlrpc.ReadCallHead(body, lim) // reads up to </methodName>
//	if err != nil {
//		return err
//	}
//	defer cr.Close()
//	if !allowed(cr.Method()) {
//		rest, _ := cr.Skip() // count and digest the parameters, bounded memory
//		return refuse(cr.Method(), rest)
//	}
//	params, err := cr.Params() // decode them, as DecodeCall would
//
// Method, then one of Params or Skip, then Close; a CallReader is not
// safe for concurrent use.
type CallReader struct {
	d      *decoder
	head   *headReader
	method string
	used   bool
}

// ReadCallHead reads r up to the end of the call's </methodName> and no
// further than MaxHeadBytes. Its errors are DecodeCall's.
func ReadCallHead(r io.Reader, lim Limits) (*CallReader, error) {
	if r == nil {
		r = eofReader{}
	}
	hr := &headReader{r: r, budget: MaxHeadBytes}
	cr := &CallReader{d: newDecoder(hr, lim, "request"), head: hr}
	method, err := cr.d.callHead()
	if err != nil {
		f := cr.d.fault(err)
		if hr.exceeded {
			f = tooLargeFault("request does not name its method within its first %d bytes", MaxHeadBytes)
		}
		cr.Close()
		return nil, f
	}
	hr.budget = -1
	cr.method = method
	return cr, nil
}

// Method is the call's method name; it matches ValidMethodName.
func (cr *CallReader) Method() string { return cr.method }

// Params decodes the rest of the call, within the limits given to
// ReadCallHead (MaxBytes counts the whole body), and checks that nothing
// follows it. It may be called once, and not after Skip.
func (cr *CallReader) Params() ([]any, error) {
	if err := cr.use(); err != nil {
		return nil, err
	}
	defer cr.Close()
	params, err := cr.d.callRest()
	if err != nil {
		return nil, cr.d.fault(err)
	}
	return params, nil
}

// Rest describes the part of a call after </methodName>, read by Skip
// without being decoded.
type Rest struct {
	// Params counts <param> elements outside comments and CDATA
	// sections: for a call DecodeCall accepts, the number of parameters
	// it returns. In a document that is not a valid call it counts
	// what looks like one.
	Params int
	// Bytes is how many bytes were read after </methodName>.
	Bytes int64
	// SHA256 is the digest of those bytes.
	SHA256 [sha256.Size]byte
}

// Skip reads the rest of the call without decoding it, in constant
// memory, and describes what it read. The body is still bounded by
// MaxBytes: past it Skip stops and returns what it saw with a
// CodeTooLarge fault; a read error gives the fault DecodeCall would.
// The document is not checked. It may be called once, and not after
// Params.
func (cr *CallReader) Skip() (Rest, error) {
	if err := cr.use(); err != nil {
		return Rest{}, err
	}
	defer cr.Close()
	sk := skimmer{h: sha256.New()}
	_, err := io.Copy(&sk, &cr.d.s)
	rest := Rest{Params: sk.params, Bytes: sk.n}
	sk.h.Sum(rest.SHA256[:0])
	if err != nil {
		return rest, cr.d.fault(err)
	}
	return rest, nil
}

// Close releases the reader's buffers; Params and Skip call it. It is
// idempotent.
func (cr *CallReader) Close() {
	if cr.d != nil {
		cr.d.release() // back to the pool: cr must not touch it again
		cr.d = nil
	}
}

func (cr *CallReader) use() error {
	if cr.used || cr.d == nil {
		return errors.New("xmlrpc: CallReader used twice or after Close")
	}
	cr.used = true
	return nil
}

// headReader stops the head of a call at MaxHeadBytes; a negative budget
// means no limit (the decoder's MaxBytes still applies).
type headReader struct {
	r        io.Reader
	budget   int64
	exceeded bool
}

var errHeadTooLarge = errors.New("xmlrpc: method name not found within MaxHeadBytes")

func (h *headReader) Read(p []byte) (int, error) {
	if h.budget < 0 {
		return h.r.Read(p)
	}
	if h.budget == 0 {
		h.exceeded = true
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > h.budget {
		p = p[:h.budget]
	}
	n, err := h.r.Read(p)
	h.budget -= int64(n)
	return n, err
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// skimmer counts the <param> start tags in what is written to it and
// digests it. Markup is recognized across writes: the state says where
// the previous write stopped.
type skimmer struct {
	h      hash.Hash
	n      int64
	params int
	state  skimState
	tag    []byte // bytes after '<' while classifying a tag (at most 9)
	tail   [2]byte
}

type skimState int

const (
	skimText    skimState = iota // outside markup of interest
	skimTag                      // after '<', deciding what it opens
	skimComment                  // inside <!-- ... -->
	skimCDATA                    // inside <![CDATA[ ... ]]>
)

const (
	commentOpen = "!--"
	cdataOpen   = "![CDATA["
	paramOpen   = "param"
)

func (s *skimmer) Write(p []byte) (int, error) {
	n := len(p)
	s.h.Write(p)
	s.n += int64(n)
	for len(p) > 0 {
		switch s.state {
		case skimText:
			j := bytes.IndexByte(p, '<')
			if j < 0 {
				return n, nil
			}
			p = p[j+1:]
			s.state, s.tag = skimTag, s.tag[:0]
		case skimTag:
			if len(s.tag) == 0 && len(p) > len(cdataOpen) {
				p = s.classifyAhead(p)
				continue
			}
			s.classify(p[0])
			p = p[1:]
		case skimComment:
			p = s.skipUntil(p, '-')
		case skimCDATA:
			p = s.skipUntil(p, ']')
		}
	}
	return n, nil
}

// classifyAhead decides what the markup at the start of p (just after
// its '<') opens when p is long enough to tell, and returns what is
// left to read. It is classify without the byte-by-byte bookkeeping.
func (s *skimmer) classifyAhead(p []byte) []byte {
	if p[0] != '!' && p[0] != 'p' { // most tags: decided on one byte
		s.state = skimText
		return p
	}
	switch {
	case bytes.HasPrefix(p, []byte(commentOpen)):
		s.state, s.tail = skimComment, [2]byte{}
		return p[len(commentOpen):]
	case bytes.HasPrefix(p, []byte(cdataOpen)):
		s.state, s.tail = skimCDATA, [2]byte{}
		return p[len(cdataOpen):]
	case bytes.HasPrefix(p, []byte(paramOpen)):
		if c := p[len(paramOpen)]; c == '>' || c == '/' || isSpaceByte(c) {
			s.params++
		}
		s.state = skimText
		return p[len(paramOpen):]
	}
	s.state = skimText // p[0] may be another '<': skimText sees it
	return p
}

// skipUntil reads p up to the end of a comment ("-->", mark '-') or a
// CDATA section ("]]>", mark ']'), and returns what follows it, or nil
// when p ends first (s.tail keeps its last two bytes).
func (s *skimmer) skipUntil(p []byte, mark byte) []byte {
	// at(k) is the byte k places into p; -1 and -2 are the tail.
	at := func(k int) byte {
		if k >= 0 {
			return p[k]
		}
		return s.tail[2+k]
	}
	from := 0
	for {
		j := bytes.IndexByte(p[from:], '>')
		if j < 0 {
			s.tail = [2]byte{at(len(p) - 2), at(len(p) - 1)}
			return nil
		}
		j += from
		if at(j-2) == mark && at(j-1) == mark {
			s.state = skimText
			return p[j+1:]
		}
		from = j + 1
	}
}

// classify takes the next byte after '<' and decides, as soon as it
// can, whether it opens a comment, a CDATA section, a <param> or
// something else.
func (s *skimmer) classify(c byte) {
	if len(s.tag) == len(paramOpen) && string(s.tag) == paramOpen {
		if c == '>' || c == '/' || isSpaceByte(c) {
			s.params++
		}
		s.state = skimText
		if c == '<' {
			s.state, s.tag = skimTag, s.tag[:0]
		}
		return
	}
	s.tag = append(s.tag, c)
	switch {
	case string(s.tag) == commentOpen:
		s.state, s.tail = skimComment, [2]byte{}
	case string(s.tag) == cdataOpen:
		s.state, s.tail = skimCDATA, [2]byte{}
	case hasPrefix(commentOpen, s.tag), hasPrefix(cdataOpen, s.tag), hasPrefix(paramOpen, s.tag):
		// still undecided
	case c == '<':
		s.state, s.tag = skimTag, s.tag[:0]
	default:
		s.state = skimText
	}
}

func hasPrefix(s string, prefix []byte) bool {
	return len(prefix) <= len(s) && s[:len(prefix)] == string(prefix)
}
