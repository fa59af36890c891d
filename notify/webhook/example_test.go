package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/notify/webhook"
)

// A receiver verifies each POST before trusting it: the signature over
// the timestamp and the raw body, and the timestamp's freshness.
func Example_receiver() {
	secret := []byte("a shared secret of 16+ bytes")
	recv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		err = webhook.Verify(secret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute)
		if err != nil {
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "json", http.StatusBadRequest)
			return
		}
		fmt.Println("verified:", p.Outcome, p.Provider+"/"+p.VMID, p.Message)
		w.WriteHeader(http.StatusNoContent)
	}))
	recv.Config.ErrorLog = log.New(io.Discard, "", 0)
	recv.StartTLS()
	defer recv.Close()

	n, err := webhook.New([]string{recv.URL + "/managedvm"}, guest.NewSecret(string(secret)),
		&webhook.Options{RootCAs: recv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer n.Close(context.Background())
	// Normally the orchestrator calls n.Observe; Send delivers one event now.
	e := enroll.Event{Kind: enroll.JournalSucceeded, Op: enroll.OpEnroll, Journal: "j-1", Message: "public 203.0.113.7 <-> local 10.0.0.7"}
	e.VM.Provider, e.VM.VMID = "vc1", "vm-42"
	fmt.Println("send:", n.Send(context.Background(), e))
	// Output:
	// verified: enrolled vc1/vm-42 public 203.0.113.7 <-> local 10.0.0.7
	// send: <nil>
}

// Verify accepts a fresh, correctly signed body and refuses a stale
// timestamp even with a correct signature (a replay).
func ExampleVerify() {
	secret := []byte("a shared secret of 16+ bytes")
	body := []byte(`{"id":"6f1c","kind":"journal.succeeded","outcome":"enrolled"}`)
	signedAt := time.Unix(1_800_000_000, 0)
	ts := fmt.Sprint(signedAt.Unix())
	sig := webhook.Sign(secret, ts, body) // what the sender put in X-Managedvm-Signature

	fmt.Println("fresh:", webhook.Verify(secret, ts, sig, body, signedAt.Add(30*time.Second), 5*time.Minute))
	err := webhook.Verify(secret, ts, sig, body, signedAt.Add(time.Hour), 5*time.Minute)
	fmt.Println("an hour later:", errs.CodeOf(err))
	err = webhook.Verify(secret, ts, sig, []byte(`{"outcome":"failed"}`), signedAt, 5*time.Minute)
	fmt.Println("other body:", errs.CodeOf(err))
	// Output:
	// fresh: <nil>
	// an hour later: PermissionDenied
	// other body: PermissionDenied
}
