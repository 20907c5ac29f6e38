//go:build race

package overlord_test

// raceEnabled: the race detector makes sync.Pool drop items at random
// and instruments allocations, so allocation counts are not meaningful
// under it.
const raceEnabled = true
