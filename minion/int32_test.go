package minion_test

import (
	"bytes"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// <int> and <i4> are 32 bits on the wire (issue 11, item 13): a minion
// refuses a bigger value there as an invalid request, and reads it in
// <i8>, which is where the overlord puts it.
func TestIntBeyond32BitsRefused(t *testing.T) {
	e := start(t, nil)
	c := e.client(gofunc.RoleOverlord, "alice")
	defer c.CloseIdleConnections()
	for _, tag := range []string{"int", "i4"} {
		body := bytes.NewBufferString(`<?xml version="1.0"?><methodCall><methodName>test.add</methodName><params>` +
			`<param><value><` + tag + `>4294967296</` + tag + `></value></param>` +
			`<param><value><int>1</int></value></param></params></methodCall>`)
		_, err := e.postCtx(t.Context(), c, body.Bytes(), nil)
		wantFault(t, "<"+tag+"> 2^32", err, gofunc.CodeInvalid, "<"+tag+">", "out of range (32 bits)")
	}
	body := []byte(`<?xml version="1.0"?><methodCall><methodName>test.add</methodName><params>` +
		`<param><value><i8>4294967296</i8></value></param><param><value><int>-2147483648</int></value></param></params></methodCall>`)
	v, err := e.postCtx(t.Context(), c, body, nil)
	if err != nil || v != int64(4294967296-2147483648) {
		t.Fatalf("test.add(<i8> 2^32, <int> -2^31) = %v, %v", v, err)
	}
	// What the overlord sends: kolo/xmlrpc's encoding, widened.
	kolo, err := xmlrpc.EncodeRequest("test.add", int64(1)<<40, uint32(4000000000))
	if err != nil {
		t.Fatal(err)
	}
	v, err = e.postCtx(t.Context(), c, kolo, nil)
	if err != nil || v != int64(1<<40+4000000000) {
		t.Fatalf("test.add(1<<40, 4e9) as the overlord sends it = %v, %v", v, err)
	}
}
