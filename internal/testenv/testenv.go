package testenv

import (
	"os"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing stops the test because component is not available: t.Skip with a
// "MISSING COMPONENT" message normally, t.Fatal under CI.
func Missing(t testing.TB, component, howToGetIt string) {
	t.Helper()
	msg := "MISSING COMPONENT " + component + ": " + howToGetIt
	if InCI() {
		t.Fatal(msg + " (CI=true: level-3 tests must run)")
	}
	t.Skip(msg)
}

// Env returns the value of the environment variable name, or stops the test
// through Missing when it is empty.
func Env(t testing.TB, name, component, howToGetIt string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		Missing(t, component, howToGetIt+" (or set "+name+")")
	}
	return v
}
