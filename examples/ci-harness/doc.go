// Package ciharness shows a CI harness built on fleettest: the tests in
// this directory start a CA and real minions on loopback with mutual
// TLS, register the code under test as a module, and drive it through
// the overlord exactly as production would — imported the way any user
// of gofunc imports it.
//
//	go test ./examples/ci-harness/
package ciharness
