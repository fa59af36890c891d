package provider_test

import (
	"reflect"
	"testing"

	"github.com/managedvm/managedvm/provider"
	"github.com/managedvm/managedvm/provider/memprovider"
)

func TestURLFlow(t *testing.T) {
	cases := []struct {
		url  string
		ok   bool
		host string
		port uint16
		tls  bool
	}{
		{"https://vc.example/sdk", true, "vc.example", 443, true},
		{"https://vc.example:8443/sdk", true, "vc.example", 8443, true},
		{"http://10.0.0.1/api", true, "10.0.0.1", 80, false},
		{"https://[2001:db8::1]:9443/", true, "2001:db8::1", 9443, true},
		{"ftp://vc.example/", false, "", 0, false},
		{"https:///nohost", false, "", 0, false},
		{"https://vc.example:0/", false, "", 0, false},
		{"::bad", false, "", 0, false},
	}
	for _, c := range cases {
		f, ok := provider.URLFlow("S", "D", c.url, "why")
		if ok != c.ok {
			t.Errorf("%q: ok = %v, want %v", c.url, ok, c.ok)
			continue
		}
		if !ok {
			continue
		}
		want := provider.Flow{Service: "S", Destination: "D", Host: c.host, Ports: []uint16{c.port}, TLS: c.tls, Why: "why"}
		if !reflect.DeepEqual(f, want) {
			t.Errorf("%q: got %+v, want %+v", c.url, f, want)
		}
	}
}

func TestProviderFlows(t *testing.T) {
	in := []provider.Flow{{Service: "S", Destination: "D", Host: "h", Ports: []uint16{443}, TLS: true}}
	m := memprovider.New(&memprovider.Options{Flows: in})
	got, ok := m.Provider().Flows()
	if !ok || !reflect.DeepEqual(got, in) {
		t.Fatalf("Flows() = %+v, %v; want %+v, true", got, ok, in)
	}
	got[0].Ports[0] = 1
	if again, _ := m.Provider().Flows(); again[0].Ports[0] != 443 {
		t.Fatal("Flows handed out the driver's Ports slice")
	}
	if _, ok := provider.New(noFlows{m}, nil).Flows(); ok {
		t.Fatal("Flows ok for a driver without FlowsDriver")
	}
}

// noFlows hides memprovider's Flows method.
type noFlows struct{ provider.Driver }
