//go:build !race

package overlord_test

const raceEnabled = false
