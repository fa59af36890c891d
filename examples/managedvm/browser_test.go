package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestBrowser drives Debian's chromium, headless, through the portal: log
// in as a user of a real slapd, see the simulator's VMs, enroll one with
// a wrong password (it fails, nothing is left), enroll it with the right
// one (its public IP and access appear, live), unenroll it. Each page is
// saved as a PNG in $MANAGEDVM_ARTIFACTS (default: a directory under the
// system's temporary directory, logged).
func TestBrowser(t *testing.T) {
	browser := os.Getenv("MANAGEDVM_CHROMIUM") // set by .ci/components/70-chromium.sh
	if browser == "" {
		browser = "/usr/bin/chromium"
	}
	needComponent(t, browser, "chromium", "apt-get install chromium (bash .ci/run installs it)")
	plain, _, caFile := startSlapd(t)
	p := ldapPortal(t, plain, caFile)

	dir := os.Getenv("MANAGEDVM_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "managedvm-portal-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)

	// Trust exactly the portal's certificate: its public key's SHA-256.
	spki := sha256.Sum256(p.srv.cert.RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.WindowSize(1400, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first call starts the browser: no timeout on it (it would stop
	// the browser); the steps below run under one.
	var alerted atomic.Bool
	if err := chromedp.Listen(bctx, func(ev any) {
		if _, ok := ev.(*cdppage.EventJavascriptDialogOpening); ok {
			alerted.Store(true)
		}
	}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()

	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.Join(strings.Fields(s), " ") // as the page shows it
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noPassword := func(where string) {
		t.Helper()
		html, err := chromedp.Run(ctx, chromedp.OuterHTML("html"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(html, canary) || strings.Contains(html, "not-the-password") {
			t.Errorf("%s: a password appears in the page", where)
		}
	}

	do("log in", chromedp.Navigate(p.base+"/login"), chromedp.WaitVisible(`input[name=user]`))
	shot("1-login")
	do("log in",
		chromedp.SendKeys(`input[name=user]`, "alice"),
		chromedp.SendKeys(`input[name=password]`, "alice-pw"),
		chromedp.Click(`form.card button`),
		chromedp.WaitVisible(`#devices`),
	)
	shot("2-devices")
	devices := text(`#devices`)
	for _, name := range []string{"web-01", "web-02", "db-01", "app-01", xssName} {
		if !strings.Contains(devices, name) {
			t.Errorf("the Devices page lacks %q:\n%s", name, devices)
		}
	}
	imgs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#devices img").length`))
	if err != nil {
		t.Fatal(err)
	}
	if imgs != 0 || alerted.Load() {
		t.Errorf("the hostile VM name became markup: %d img elements, dialog opened %v", imgs, alerted.Load())
	}

	openDevice := chromedp.Steps(
		chromedp.Navigate(p.base+"/devices?q=web-01"),
		chromedp.WaitVisible(`#devices`),
		chromedp.Click(`//a[text()="web-01"]`),
		chromedp.WaitVisible(`dl.facts`),
	)
	do("enroll with a wrong password",
		openDevice,
		chromedp.SendKeys(`form[action$="/enroll"] input[name=password]`, "not-the-password"),
		chromedp.Click(`form[action$="/enroll"] button`),
		chromedp.WaitVisible(`#outcome.error`),
	)
	noPassword("the failed operation")
	shot("3-enroll-wrong-password")
	if outcome, steps := text(`#outcome`), text(`#steps`); !strings.Contains(outcome, "Failed (Unauthenticated) at step credentials, rolled back") || !strings.Contains(steps, "FAIL credentials") {
		t.Errorf("wrong password: outcome %q, steps %q", outcome, steps)
	}
	do("enroll",
		openDevice,
		chromedp.SendKeys(`form[action$="/enroll"] input[name=password]`, canary),
		chromedp.Click(`form[action$="/enroll"] button`),
		chromedp.WaitVisible(`#outcome.ok`),
	)
	noPassword("the operation")
	shot("4-enroll")
	if outcome, steps := text(`#outcome`), text(`#steps`); !strings.Contains(outcome, "Done: enrolled, public IP 203.0.113.") || !strings.Contains(steps, "ok firewall") {
		t.Errorf("enroll: outcome %q, steps %q", outcome, steps)
	}
	do("the enrolled device", openDevice)
	shot("5-device-enrolled")
	if main := text(`main`); !strings.Contains(main, "ssh") || !strings.Contains(main, ":22") || !strings.Contains(main, "198.51.100.0/24") {
		t.Errorf("the device page lacks its access:\n%s", main)
	}
	do("unenroll",
		chromedp.SendKeys(`form[action$="/unenroll"] input[name=password]`, canary),
		chromedp.Click(`form[action$="/unenroll"] button`),
		chromedp.WaitVisible(`#outcome.ok`),
	)
	noPassword("the unenrollment")
	shot("6-unenroll")
	if outcome := text(`#outcome`); !strings.Contains(outcome, "Done: available") {
		t.Errorf("unenroll: %q", outcome)
	}
	do("audit", chromedp.Navigate(p.base+"/audit"), chromedp.WaitVisible(`table`))
	shot("7-audit")
	if audit := text(`main`); strings.Count(audit, "alice") < 3 || !strings.Contains(audit, "Unauthenticated") {
		t.Errorf("the audit page:\n%s", audit)
	}
	do("preflight", chromedp.Navigate(p.base+"/preflight"), chromedp.WaitVisible(`table`))
	shot("8-preflight")
	do("netreq", chromedp.Navigate(p.base+"/netreq"), chromedp.WaitVisible(`table`))
	shot("9-netreq")
}
