package ovirt_test

import (
	"net/url"
	"strconv"
	"testing"
)

func TestFlows(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil, nil)
	flows, ok := w.pp.Flows()
	if !ok || len(flows) != 1 {
		t.Fatalf("Flows() = %+v, %v", flows, ok)
	}
	u, _ := url.Parse(w.s.URL())
	f := flows[0]
	if f.Host != u.Hostname() || len(f.Ports) != 1 || strconv.Itoa(int(f.Ports[0])) != u.Port() || f.TLS != (u.Scheme == "https") {
		t.Fatalf("flow %+v, want the engine %s", f, w.s.URL())
	}
}
