package cliconf

import (
	"fmt"
	"math"

	"github.com/alecthomas/kong"
	"github.com/dustin/go-humanize"
)

// Size is a flag holding a number of bytes, written as a plain number
// ("1073741824") or with a unit ("1GiB", "512MiB", "2 GB": the IEC
// units are powers of 1024, the SI ones of 1000). In gofunc.toml it may
// also be a TOML integer. Negative sizes and sizes beyond int64 are
// refused.
type Size int64

// Decode implements kong.MapperValue.
func (s *Size) Decode(ctx *kong.DecodeContext) error {
	tok, err := ctx.Scan.PopValue("size")
	if err != nil {
		return err
	}
	switch v := tok.Value.(type) {
	case string:
		n, err := humanize.ParseBytes(v)
		if err != nil || n > math.MaxInt64 {
			return fmt.Errorf("%q is not a size (a number of bytes, or with a unit: 512MiB, 4GiB)", v)
		}
		*s = Size(n)
	case int64:
		if v < 0 {
			return fmt.Errorf("size %d is negative", v)
		}
		*s = Size(v)
	default:
		return fmt.Errorf("%v (%T) is not a size", v, v)
	}
	return nil
}

// PlaceHolder implements kong.PlaceHolderProvider.
func (s *Size) PlaceHolder(*kong.Flag) string { return "SIZE" }

// String prints the size in IEC units ("1.0 GiB").
func (s Size) String() string { return humanize.IBytes(uint64(s)) }
