package smtpnotify_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/notify"
	"github.com/managedvm/managedvm/notify/smtpnotify"
)

// A host mails outcomes through its submission relay (587, STARTTLS and
// AUTH), to the operators and, for the "gold" profile, to its team too.
func Example() {
	n, err := smtpnotify.New(smtpnotify.Relay{
		Addr:     "relay.example.com:587",
		Security: smtpnotify.STARTTLS,
		Username: "managedvm",
		Password: guest.NewSecret("from the host's secret store"),
	}, "managedvm@example.com", &smtpnotify.Options{
		Recipients:        []string{"ops@example.com"},
		ProfileRecipients: map[string][]string{"gold": {"gold-team@example.com", "ops@example.com"}},
		Templates: map[notify.Outcome]smtpnotify.Template{
			notify.Failed: {Subject: `[managedvm] {{.VM}}: {{.Op}} failed ({{.Code}})`},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Give it to the orchestrator (with notify.Multi beside other observers):
	_ = &enroll.Options{Observer: notify.Multi(n, enroll.LogObserver(slog.Default()))}
	// ... and at shutdown deliver what is queued, for at most 10 s.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.Close(ctx)
	fmt.Printf("%+v\n", n.Stats())
	// Output:
	// {Queued:0 Sent:0 Failed:0 Dropped:0 Retries:0 Pending:0 LastCode:OK LastError:}
}

// Addresses are checked: one that could add a header is refused.
func ExampleNew_invalidAddress() {
	_, err := smtpnotify.New(smtpnotify.Relay{Addr: "relay.example.com:25"}, "managedvm@example.com",
		&smtpnotify.Options{Recipients: []string{"ops@example.com\r\nBcc: someone@example.net"}})
	fmt.Println(errs.CodeOf(err))
	// Output:
	// InvalidArgument
}
