//go:build !unix

package audit

// noFollow is O_NOFOLLOW where the platform has it; not here.
const noFollow = 0
