package broker

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"
)

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// FuzzParseEnvelope feeds arbitrary header values to the call and reply
// parsers: they must return a typed error or a consistent envelope,
// never panic.
func FuzzParseEnvelope(f *testing.F) {
	cert := testCert(f, "admin")
	c := goldenCall
	body := []byte("<methodCall/>")
	h, err := SignCall(cert, &c, body)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(h.Get(HeaderVersion), h.Get(HeaderID), h.Get(HeaderIssued), h.Get(HeaderDeadline), h.Get(HeaderMethod),
		h.Get(HeaderAudience), h.Get(HeaderReplyTo), h.Get(HeaderBodySum), h.Get(HeaderCert), h.Get(HeaderSig), "1", "1", body)
	f.Add("1", "", "", "", "", ",,,", "", "", "", "", "0", "", []byte(nil))
	f.Fuzz(func(t *testing.T, ver, id, issued, deadline, method, aud, reply, sum, certB64, sig, seq, final string, body []byte) {
		h := Header{}
		for k, v := range map[string]string{HeaderVersion: ver, HeaderID: id, HeaderIssued: issued, HeaderDeadline: deadline,
			HeaderMethod: method, HeaderAudience: aud, HeaderReplyTo: reply, HeaderBodySum: sum, HeaderCert: certB64,
			HeaderSig: sig, HeaderSeq: seq, HeaderFinal: final, HeaderMinion: method} {
			h.set(k, v)
		}
		if sc, err := ParseCall(h, body); err == nil {
			if sc.Cert == nil || len(sc.Audience) == 0 || len(sc.Audience) > MaxAudience || sha256.Sum256(body) != sc.BodySum {
				t.Fatalf("accepted an inconsistent call: %+v", sc)
			}
			_ = sc.VerifySignature()
		}
		if rf, err := ParseRefusal(h, reply, body); err == nil {
			if rf.Cert == nil || !isID(rf.ID) {
				t.Fatalf("accepted an inconsistent refusal: %+v", rf)
			}
			_ = rf.VerifySignature()
		}
		if sr, err := ParseReply(h, [32]byte{}); err == nil {
			if sr.Cert == nil || !sr.Final || sr.Seq < 1 {
				t.Fatalf("accepted an inconsistent reply: %+v", sr)
			}
			_ = sr.VerifySignature()
			_ = sr.CheckBody(body)
		}
	})
}
