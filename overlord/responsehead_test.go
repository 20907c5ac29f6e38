package overlord

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// FuzzReadResponseHead holds the direct transport's answer-head parser
// to net/http's as an oracle: a head it accepts, net/http accepts too,
// with the same status and the same body framing (length, chunked),
// and every refusal is a typed protocol error, never a panic.
func FuzzReadResponseHead(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nGofunc-Call-Id: x\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200\r\ncontent-length: 0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		h, err := readResponseHead(bufio.NewReaderSize(strings.NewReader(in), readBufferSize))
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !strings.HasPrefix(err.Error(), "reading ") {
				t.Fatalf("%q: error %v is neither a protocol error nor a read error", in, err)
			}
			return
		}
		resp, herr := http.ReadResponse(bufio.NewReader(strings.NewReader(in)), nil)
		if herr != nil {
			t.Fatalf("%q: accepted (%+v) but net/http refuses it: %v", in, h, herr)
		}
		defer resp.Body.Close()
		if resp.StatusCode != h.status {
			t.Fatalf("%q: status %d, net/http %d", in, h.status, resp.StatusCode)
		}
		if h.status < 200 || h.status == 204 || h.status == 304 {
			return // no body, whatever the headers say
		}
		httpChunked := len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
		if h.chunked != httpChunked {
			t.Fatalf("%q: chunked %v, net/http %v", in, h.chunked, httpChunked)
		}
		if !h.chunked && h.length >= 0 && resp.ContentLength >= 0 && resp.ContentLength != h.length {
			t.Fatalf("%q: length %d, net/http %d", in, h.length, resp.ContentLength)
		}
		// Without a length or chunks, the body runs to the close.
		if keep := !h.close && (h.chunked || h.length >= 0); resp.Close && keep {
			t.Fatalf("%q: net/http would close the connection after it, we would keep it", in)
		}
	})
}
