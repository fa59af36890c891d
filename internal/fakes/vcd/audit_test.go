package vcd_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/internal/fakes/vcd"
)

func auditURL(t testing.TB, s *vcd.Server) *url.URL {
	return mustURL(t, s.URL()+"/cloudapi/1.0.0/auditTrail/")
}

func TestAuditTrailPagingAndTimestampFilter(t *testing.T) {
	s := start(t, nil)
	for i := range 30 {
		if _, err := s.AddVM(vcd.VMSpec{Name: fmt.Sprintf("a-%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	c := login(t, s)
	f := setup(t, s)
	if _, err := f.vdc.CreateVappFromTemplate(f.params("made-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameVM("a-00", "a-00-new"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveVApp("a-01"); err != nil {
		t.Fatal(err)
	}
	// 30 x (vapp create + vm create) + instantiation (2) + modify + 2 deletes.
	const want = 60 + 2 + 1 + 2

	var all []vcd.AuditEvent
	before := s.Requests("GET /cloudapi/1.0.0/auditTrail")
	if err := c.Client.OpenApiGetAllItems("37.0", auditURL(t, s), url.Values{"pageSize": {"20"}, "sortAsc": {"timestamp"}}, &all, nil); err != nil {
		t.Fatalf("OpenApiGetAllItems: %v", err)
	}
	if len(all) != want {
		t.Fatalf("%d events, want %d", len(all), want)
	}
	if n := s.Requests("GET /cloudapi/1.0.0/auditTrail") - before; n != 4 {
		t.Fatalf("%d pages fetched for %d events at 20 per page", n, want)
	}
	counts := map[string]int{}
	for i, ev := range all {
		counts[ev.EventType]++
		if i > 0 && ev.Timestamp < all[i-1].Timestamp {
			t.Fatalf("not sorted at %d", i)
		}
		if ev.EventID == "" || ev.EventEntity.ID == "" || ev.OperatingOrg.Name != "acme" || ev.EventStatus != "SUCCESS" {
			t.Fatalf("event %+v", ev)
		}
	}
	if counts[vcd.EventVMCreate] != 31 || counts[vcd.EventVMModify] != 1 || counts[vcd.EventVMDelete] != 1 || counts[vcd.EventVAppDelete] != 1 {
		t.Fatalf("counts %v", counts)
	}
	var made *vcd.AuditEvent
	for i := range all {
		if all[i].EventType == vcd.EventVMCreate && all[i].EventEntity.Name == "made-1" {
			made = &all[i]
		}
	}
	if made == nil || made.TaskID == nil || made.User.Name != "orgadmin" || !strings.HasPrefix(made.EventEntity.ID, "urn:vcloud:vm:") {
		t.Fatalf("instantiation event %+v", made)
	}

	// The cursor: events after a timestamp.
	time.Sleep(5 * time.Millisecond)
	cursor := all[len(all)-1].Timestamp
	if err := s.SetVMIP("a-02", "10.10.9.9"); err != nil {
		t.Fatal(err)
	}
	var newer []vcd.AuditEvent
	q := url.Values{"filter": {"timestamp=gt=" + cursor}, "sortAsc": {"timestamp"}}
	if err := c.Client.OpenApiGetAllItems("37.0", auditURL(t, s), q, &newer, nil); err != nil {
		t.Fatal(err)
	}
	if len(newer) != 1 || newer[0].EventType != vcd.EventVMModify || newer[0].EventEntity.Name != "a-02" {
		t.Fatalf("after cursor %+v", newer)
	}
	// Ranges and other fields combine.
	var vmDeletes []vcd.AuditEvent
	q = url.Values{"filter": {"timestamp=ge=" + all[0].Timestamp + ";eventType==" + vcd.EventVMDelete}}
	if err := c.Client.OpenApiGetAllItems("37.0", auditURL(t, s), q, &vmDeletes, nil); err != nil || len(vmDeletes) != 1 {
		t.Fatalf("eventType filter: %v %d", err, len(vmDeletes))
	}

	// The raw page shape and the Link header.
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/cloudapi/1.0.0/auditTrail?page=2&pageSize=30&sortDesc=timestamp", nil)
	req.Header.Set("X-Vmware-Vcloud-Access-Token", c.Client.VCDToken)
	req.Header.Set("Accept", "application/json;version=37.0")
	resp, err := (&http.Client{Transport: c.Client.Http.Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pg struct {
		ResultTotal, PageCount, Page, PageSize int
		Values                                 []vcd.AuditEvent
	}
	if err := json.NewDecoder(resp.Body).Decode(&pg); err != nil {
		t.Fatal(err)
	}
	if pg.ResultTotal != want+1 || pg.PageCount != 3 || pg.Page != 2 || pg.PageSize != 30 || len(pg.Values) != 30 {
		t.Fatalf("page %+v", pg)
	}
	if l := resp.Header.Get("Link"); !strings.Contains(l, `rel="nextPage"`) || !strings.Contains(l, "page=3") {
		t.Fatalf("Link %q", l)
	}
	// A bad filter is a 400 with the cloudapi error body.
	var x []vcd.AuditEvent
	if err := c.Client.OpenApiGetAllItems("37.0", auditURL(t, s), url.Values{"filter": {"timestamp=zz=1"}}, &x, nil); err == nil || !strings.Contains(err.Error(), "BAD_REQUEST") {
		t.Fatalf("bad filter: %v", err)
	}
}

// TestAuditTrailRetention: events older than AuditRetention leave the
// trail, oldest first, for the API as for AuditEvents.
func TestAuditTrailRetention(t *testing.T) {
	s := start(t, &vcd.Options{AuditRetention: 150 * time.Millisecond})
	if _, err := s.AddVM(vcd.VMSpec{Name: "old"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := s.AddVM(vcd.VMSpec{Name: "new"}); err != nil {
		t.Fatal(err)
	}
	c := login(t, s)
	var ev []*vcd.AuditEvent
	if err := c.Client.OpenApiGetAllItems("37.0", auditURL(t, s), nil, &ev, nil); err != nil {
		t.Fatal(err)
	}
	if len(ev) != 2 || ev[0].EventEntity.Name != "new" || ev[1].EventEntity.Name != "new" {
		t.Fatalf("trail after the retention: %d events", len(ev))
	}
	if n := len(s.AuditEvents()); n != 2 {
		t.Fatalf("AuditEvents holds %d events, want 2", n)
	}
}
