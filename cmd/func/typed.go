package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Typed JSON is what `func transmit` reads and writes when a request
// says "typed": true: plain JSON, except for the XML-RPC values JSON
// cannot tell apart from others, so that a program in another language
// (the Puppet module in contrib/puppet) gets back exactly the types the
// minion sent and can send every type a method takes:
//
//	<base64>            {"$binary": "<standard base64>"}   (plain JSON: a base64 string)
//	<dateTime.iso8601>  {"$datetime": "2006-01-02T15:04:05Z"} (plain JSON: an RFC 3339 string)
//	<double>            a number with a fraction or exponent, 2.0 not 2 (plain JSON: 2, read back as an integer)
//	<struct> whose only member's name starts with "$"
//	                    {"$map": {...}}, so it is not read as one of these tags
const (
	tagBinary   = "$binary"
	tagDateTime = "$datetime"
	tagMap      = "$map"
)

// typedSchema documents typed JSON for transmit's help and the README.
const typedSchema = `With "typed": true, args and results carry the types JSON lacks:
{"$binary": "<base64>"} is <base64>, {"$datetime": "2006-01-02T15:04:05Z"}
is <dateTime.iso8601> (whole seconds), a double always has a fraction or
an exponent (2.0), and a struct whose only member's name starts with "$"
is wrapped as {"$map": {...}}.`

// isTagLike says whether m would be read as a tag: one member, whose
// name starts with "$".
func isTagLike(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return strings.HasPrefix(k, "$")
	}
	return false
}

// typedValue is v (a value as the overlord decodes it: nil, bool,
// int64, float64, string, []byte, time.Time, []any, map[string]any)
// in typed JSON, ready for encoding/json.
func typedValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return map[string]any{tagBinary: base64.StdEncoding.EncodeToString(x)}
	case time.Time:
		return map[string]any{tagDateTime: x.UTC().Format(time.RFC3339)}
	case float64:
		return typedFloat(x)
	case float32:
		return typedFloat(float64(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = typedValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = typedValue(e)
		}
		if isTagLike(x) {
			return map[string]any{tagMap: out}
		}
		return out
	}
	return v
}

// typedFloat writes f so that every JSON reader sees a float: with a
// fraction or an exponent. XML-RPC has no NaN or infinity, so f is
// finite; a NaN that got here anyway stays an encoding error.
func typedFloat(f float64) any {
	b, err := json.Marshal(f)
	if err != nil {
		return f
	}
	s := string(b)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return json.Number(s)
}

// untypedValue reads typed JSON: v is a value as fromJSON left it
// (numbers converted, nulls refused) and the tags become the values
// they stand for. A one-member object whose name starts with "$" and
// is none of the tags is an error, so that a tag added later is never
// taken for a struct by an older func.
func untypedValue(v any) (any, error) {
	switch x := v.(type) {
	case []any:
		for i, e := range x {
			u, err := untypedValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			x[i] = u
		}
		return x, nil
	case map[string]any:
		if isTagLike(x) {
			for k, e := range x {
				return untag(k, e)
			}
		}
		return untypedMembers(x)
	}
	return v, nil
}

// untypedMembers reads each member of a struct.
func untypedMembers(m map[string]any) (map[string]any, error) {
	for k, e := range m {
		u, err := untypedValue(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		m[k] = u
	}
	return m, nil
}

// untag reads one tagged value.
func untag(tag string, v any) (any, error) {
	switch tag {
	case tagBinary:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s wants a base64 string, got %s", tag, kindOf(v))
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s: not standard base64: %w", tag, err)
		}
		return b, nil
	case tagDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s wants an RFC 3339 string, got %s", tag, kindOf(v))
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not an RFC 3339 time such as 2006-01-02T15:04:05Z", tag, s)
		}
		if t.Nanosecond() != 0 {
			return nil, fmt.Errorf("%s: %q has a fraction of a second; <dateTime.iso8601> carries whole seconds", tag, s)
		}
		return t.UTC(), nil
	case tagMap:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s wants an object, got %s", tag, kindOf(v))
		}
		return untypedMembers(m)
	}
	return nil, fmt.Errorf("unknown tag %q (tags: %s, %s, %s; wrap a struct with such a member in %s)",
		tag, tagBinary, tagDateTime, tagMap, tagMap)
}

// kindOf names the JSON type of a value decoded by fromJSON.
func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64, json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return strconv.Quote(fmt.Sprintf("%T", v))
}
