package xmlrpc

// Limits bound what one document may cost to decode. A zero (or negative)
// field means its default.
type Limits struct {
	// MaxBytes bounds the document's size in bytes; default 8 MiB.
	// One byte more is CodeTooLarge, never a silent truncation.
	MaxBytes int64
	// MaxDepth bounds the nesting of arrays and structs; default 32.
	// A scalar parameter is at depth 0, the values inside a top-level
	// array at depth 1.
	MaxDepth int
	// MaxValues bounds the number of values in the whole document,
	// nested ones included; default 1<<20.
	MaxValues int
}

// DefaultLimits are the limits a zero Limits stands for.
var DefaultLimits = Limits{MaxBytes: 8 << 20, MaxDepth: 32, MaxValues: 1 << 20}

// withDefaults returns l with its zero fields set from DefaultLimits
// (as they are now: a program may tune the package default at start).
func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	if l.MaxValues <= 0 {
		l.MaxValues = DefaultLimits.MaxValues
	}
	// DefaultLimits itself may have been zeroed by a careless program;
	// fall back to the documented constants rather than to no limit.
	if l.MaxBytes <= 0 {
		l.MaxBytes = 8 << 20
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 32
	}
	if l.MaxValues <= 0 {
		l.MaxValues = 1 << 20
	}
	return l
}
