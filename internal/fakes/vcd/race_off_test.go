//go:build !race

package vcd_test

const raceEnabled = false
