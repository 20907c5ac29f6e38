package xmlrpc

import (
	"cmp"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// SnakeCase is the wire form of a Go name: "ListModules" -> "list_modules",
// "IsPortOpen" -> "is_port_open", "CPUInfo" -> "cpu_info", "JobID" ->
// "job_id", "ID" -> "id", "MD5Sum" -> "md5_sum". An underscore goes before
// an upper-case letter that follows a lower-case letter or a digit, or
// that ends an acronym (is followed by a lower-case letter).
func SnakeCase(goName string) string {
	var b strings.Builder
	b.Grow(len(goName) + 4)
	var prev rune
	for i, r := range goName {
		if unicode.IsUpper(r) {
			if i > 0 && prev != '_' {
				next, _ := utf8.DecodeRuneInString(goName[i+utf8.RuneLen(r):])
				if unicode.IsLower(prev) || unicode.IsDigit(prev) || unicode.IsUpper(prev) && unicode.IsLower(next) {
					b.WriteByte('_')
				}
			}
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

// field is one wire member of a Go struct type.
type field struct {
	name      string       // member name on the wire
	index     []int        // path through embedded structs, for FieldByIndex
	typ       reflect.Type // the field's Go type
	omitEmpty bool
	tagged    bool // name came from a tag: it wins over an untagged twin
}

type structFields struct {
	list   []field // in field order
	byName map[string]*field
}

var fieldCache sync.Map // reflect.Type -> *structFields

// cachedFields returns the wire members of struct type t.
func cachedFields(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f, _ := fieldCache.LoadOrStore(t, typeFields(t))
	return f.(*structFields)
}

// typeFields lists the members of struct type t, flattening embedded
// structs with encoding/json's rules: a shallower field hides a deeper
// one of the same name, a tagged field beats an untagged one at the same
// depth, and names still ambiguous after that are dropped.
func typeFields(t reflect.Type) *structFields {
	type walk struct {
		typ   reflect.Type
		index []int
	}
	var fields []field
	next := []walk{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current := next
		next = nil
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, w := range current {
			if visited[w.typ] {
				continue
			}
			visited[w.typ] = true
			for i := range w.typ.NumField() {
				sf := w.typ.Field(i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if sf.Anonymous {
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("xmlrpc")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				index := append(slices.Clip(w.index), i)
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					nextCount[ft]++
					if nextCount[ft] == 1 {
						next = append(next, walk{typ: ft, index: index})
					}
					continue
				}
				f := field{
					name:      name,
					index:     index,
					typ:       sf.Type,
					omitEmpty: hasOption(opts, "omitempty"),
					tagged:    name != "",
				}
				if f.name == "" {
					f.name = SnakeCase(sf.Name)
				}
				fields = append(fields, f)
				if count[w.typ] > 1 {
					// The same embedded type twice at this depth: add a
					// twin so that the name is seen as ambiguous.
					fields = append(fields, f)
				}
			}
		}
	}

	slices.SortFunc(fields, func(a, b field) int {
		return cmp.Or(
			strings.Compare(a.name, b.name),
			cmp.Compare(len(a.index), len(b.index)),
			boolOrder(a.tagged, b.tagged),
			slices.Compare(a.index, b.index),
		)
	})
	out := fields[:0]
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && fields[j].name == fields[i].name {
			j++
		}
		group := fields[i:j]
		if len(group) == 1 || len(group[0].index) < len(group[1].index) || group[0].tagged != group[1].tagged {
			out = append(out, group[0])
		}
		i = j
	}
	slices.SortFunc(out, func(a, b field) int { return slices.Compare(a.index, b.index) })

	sf := &structFields{list: out, byName: make(map[string]*field, len(out))}
	for i := range sf.list {
		sf.byName[sf.list[i].name] = &sf.list[i]
	}
	return sf
}

// boolOrder sorts true first.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return -1
	}
	return 1
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// isEmptyValue is encoding/json's notion of empty, for omitempty, plus
// the zero time.Time: XML-RPC has no null date, and a "not yet" time
// (a running job's finish) must be left out rather than sent as
// 0001-01-01.
func isEmptyValue(v reflect.Value) bool {
	if v.Type() == timeType {
		if !v.CanInterface() { // reached through an unexported embedded struct
			return v.IsZero()
		}
		t, _ := reflect.TypeAssert[time.Time](v)
		return t.IsZero()
	}
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64,
		reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
