package xmlrpc

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	var b bytes.Buffer
	type S struct {
		Name  string
		JobID int64
		Raw   []byte
		When  time.Time
		Ptr   *int
		Many  []any
	}
	err := EncodeCall(&b, "x.y", 1, "a<b\r", S{Name: "n", JobID: 1 << 40, Raw: []byte{0, 1}, When: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), Many: []any{1.5, true, nil, map[string]any{"k": "\x1b[0m"}}})
	fmt.Println(b.String(), err)
	c, err := DecodeCall(&b, Limits{})
	fmt.Printf("%#v %v\n", c, err)
	_, err = DecodeCall(strings.NewReader(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><methodCall/>`), Limits{})
	fmt.Println(err)
}
