package enroll_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/managedvm/managedvm/cmdb"
	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
)

// TestSecretsNeverLeak runs enrollments, failures, a crash with Resume,
// unenrollments and the Indexer with canary passwords, then searches every
// log line, error, event, journal, CMDB record and result for them.
func TestSecretsNeverLeak(t *testing.T) {
	const wrong = "CANARY-wrong-91b2"
	w := newWorld(t, worldOptions{vms: 6})
	ctx := context.Background()
	o := w.orchestrator("i1", nil)
	var texts []string
	note := func(v ...any) {
		for _, x := range v {
			texts = append(texts, fmt.Sprintf("%v|%+v|%#v", x, x, x))
			if b, err := json.Marshal(x); err == nil {
				texts = append(texts, string(b))
			}
		}
	}
	stop := runIndexer(t, o)
	waitFor(t, "sync", func() bool { return w.state(5) == cmdb.Available })
	for i := 0; i < 3; i++ {
		res, err := o.Enroll(ctx, w.request(i, ""))
		note(res, err)
	}
	// Wrong password, in guest and over the network.
	req := w.request(3, "")
	req.Credentials = guest.Password("admin", wrong)
	res, err := o.Enroll(ctx, req)
	if errs.CodeOf(err) != errs.Unauthenticated {
		t.Fatalf("wrong password: %v", err)
	}
	note(res, err, req, req.Credentials)
	// A failure deep in the saga, with compensation.
	w.fwInj.Fail("EnsureNAT", w.fwInj.Calls("EnsureNAT")+1, errs.Internal)
	res, err = o.Enroll(ctx, w.request(4, ""))
	note(res, err)
	// A crash and a Resume that asks the CredentialSource.
	enroll.SetHook(o, func(p string) {
		if p == "after-do:"+enroll.StepIPAM {
			panic(crash{p})
		}
	})
	func() {
		defer func() { _ = recover() }()
		_, _ = o.Enroll(ctx, w.request(5, ""))
	}()
	w.advance(time.Hour)
	rep, err := w.orchestrator("i2", nil).Resume(ctx)
	note(rep, err)
	for i := 0; i < 3; i++ {
		res, err := o.Unenroll(ctx, enroll.UnenrollRequest{Provider: provName, VMID: w.vms[i].ID, Credentials: guest.Password("admin", password)})
		note(res, err)
	}
	stop()
	recs, _ := w.db.List(ctx, cmdb.Filter{IncludeRetired: true})
	note(recs)
	for _, j := range w.allJournals() {
		note(j)
	}
	w.mu.Lock()
	for _, e := range w.events {
		note(e)
	}
	nEvents := len(w.events)
	w.mu.Unlock()
	w.logMu.Lock()
	logs := w.logs.String()
	w.logMu.Unlock()
	texts = append(texts, logs)
	if nEvents < 50 || strings.Count(logs, "\n") < 50 {
		t.Fatalf("too little was observed to prove anything: %d events, %d log lines", nEvents, strings.Count(logs, "\n"))
	}
	for _, text := range texts {
		for _, canary := range []string{password, wrong} {
			if strings.Contains(text, canary) {
				t.Fatalf("secret %q leaked in: %.300s", canary, text)
			}
		}
	}
	// The journals do keep what is needed to resume: the user name.
	if js := w.allJournals(); len(js) == 0 || js[0].Username != "admin" {
		t.Fatalf("journals %+v", js)
	}
}
