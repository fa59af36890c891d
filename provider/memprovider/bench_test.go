package memprovider_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

func BenchmarkProvision(b *testing.B) {
	ctx := context.Background()
	p, fx := world(b, nil)
	i := 0
	for b.Loop() {
		i++
		name := fmt.Sprint("bench-", i)
		if _, err := p.Provider().Provision(ctx, provider.ProvisionSpec{Key: name, Name: name, Template: fx.Template, Zone: fx.Zone, PowerOn: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList lists 1,000 VMs.
func BenchmarkList(b *testing.B) {
	ctx := context.Background()
	p := memprovider.New(nil)
	for i := range 1000 {
		if _, err := p.AddVM(provider.VM{Name: fmt.Sprint("vm", i)}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		vms, err := p.Provider().List(ctx, nil)
		if err != nil || len(vms) != 1000 {
			b.Fatal(len(vms), err)
		}
	}
}

// BenchmarkWatchReplay replays one event per iteration from a full history
// of 10,000 events, watching again from "0" at its end.
func BenchmarkWatchReplay(b *testing.B) {
	const events = memprovider.DefaultHistorySize
	ctx := context.Background()
	p := memprovider.New(nil)
	for i := range events {
		if _, err := p.AddVM(provider.VM{Name: fmt.Sprint("vm", i)}); err != nil {
			b.Fatal(err)
		}
	}
	var st *provider.Stream
	n := events
	for b.Loop() {
		if n == events {
			if st != nil {
				st.Close()
			}
			var err error
			if st, err = p.Provider().Watch(ctx, "0"); err != nil {
				b.Fatal(err)
			}
			n = 0
		}
		if _, err := st.Next(ctx); err != nil {
			b.Fatal(err)
		}
		n++
	}
	st.Close()
}
