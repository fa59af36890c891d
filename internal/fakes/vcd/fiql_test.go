package vcd

import (
	"net/url"
	"testing"
)

func TestFilter(t *testing.T) {
	rec := map[string]string{"name": "web-1", "status": "POWERED_ON", "numberOfCpus": "4",
		"timestamp": "2026-12-07T10:00:00.500Z", "ref": "https://h/api/org/x;y"}
	get := func(k string) (string, bool) { v, ok := rec[k]; return v, ok }
	cases := []struct {
		f    string
		want bool
	}{
		{"name==web-1", true},
		{"name==web-2", false},
		{"name==web-*", true},
		{"name!=web-1", false},
		{"missing!=x", true},
		{"missing==x", false},
		{"name==web-1;status==POWERED_OFF", false},
		{"name==web-2,status==POWERED_ON", true},
		{"(name==a,name==web-1);numberOfCpus=ge=4", true},
		{"(name==a,name==b);numberOfCpus=ge=4", false},
		{"numberOfCpus=gt=10", false},
		{"numberOfCpus=lt=10", true},
		{"numberOfCpus=le=4", true},
		{"timestamp=gt=2026-12-07T10:00:00.499Z", true},
		{"timestamp=gt=2026-12-07T10:00:00.500Z", false},
		{"timestamp=ge=2026-12-07T10:00:00.500Z", true},
		{"timestamp=lt=2026-12-07T11:00:00Z", true},
	}
	for _, c := range cases {
		f, err := parseFilter(c.f, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.f, err)
		}
		if got := f.match(get); got != c.want {
			t.Errorf("%s = %v, want %v", c.f, got, c.want)
		}
	}
	// Encoded values: separators inside a value survive when the filter is
	// split before decoding.
	f, err := parseFilter("ref=="+url.QueryEscape("https://h/api/org/x;y")+";name==web-1", url.QueryUnescape)
	if err != nil || !f.match(get) {
		t.Fatalf("encoded value: %v", err)
	}
	for _, bad := range []string{"", "name", "name=~x", "(name==a", "name==a)", "==a", "name==a;"} {
		if _, err := parseFilter(bad, nil); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{"name==a", "(a==1,b=gt=2);c!=3", "timestamp=ge=2026-01-01T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := parseFilter(s, url.QueryUnescape)
		if err != nil {
			return
		}
		flt.match(func(string) (string, bool) { return "x", true })
	})
}

func TestPathKey(t *testing.T) {
	for in, want := range map[string]string{
		"/api/vApp/vapp-0b7d0d8e-5f1e-4a43-9c55-3c1b2f8d2e10": "/api/vApp/{id}",
		"/api/query": "/api/query",
		"/cloudapi/1.0.0/edgeGateways/urn:vcloud:gateway:0b7d0d8e-5f1e-4a43-9c55-3c1b2f8d2e10/nat/rules/": "/cloudapi/1.0.0/edgeGateways/{id}/nat/rules",
		"/api/vAppTemplate/vappTemplate-0b7d0d8e-5f1e-4a43-9c55-3c1b2f8d2e10":                             "/api/vAppTemplate/{id}",
	} {
		if got := pathKey(in); got != want {
			t.Errorf("pathKey(%s) = %s, want %s", in, got, want)
		}
	}
}
