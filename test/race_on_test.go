//go:build race

package test

// raceBuild makes TestMain build the binary under test with the race detector too.
const raceBuild = true
