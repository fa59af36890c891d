package memguest_test

import (
	"context"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
)

// BenchmarkRunOverhead measures what an executor adds around a handler
// that answers at once (the same source before and after issue 18).
func BenchmarkRunOverhead(b *testing.B) {
	ex := memguest.New(guest.Linux, &memguest.Options{Default: memguest.Reply("ok\n")})
	cmd := guest.Command{Args: []string{"true", "x"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ex.Run(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
}
