//go:build linux

package nftables

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/internal/testkit"
	"github.com/managedvm/managedvm/natfw"
)

// lockTestDriver returns a Driver whose lock file lives in a temporary
// directory. As root it works in a throwaway network namespace, so a
// change that wrongly got past the lock could not touch the host's rules;
// otherwise in the caller's namespace, where it could not change any.
func lockTestDriver(t *testing.T) *Driver {
	t.Helper()
	opts := Options{Table: "mvmlocktest", LockDir: t.TempDir()}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("ip"); err == nil {
			b := make([]byte, 4)
			_, _ = rand.Read(b)
			name := "mvmlock-" + hex.EncodeToString(b)
			if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
				t.Fatalf("ip netns add: %v\n%s", err, out)
			}
			t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
			opts.NetNSPath = "/run/netns/" + name
		}
	}
	d, err := NewDriver(&opts)
	if err != nil {
		t.Fatalf("NewDriver: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// holdFileLock takes the Driver's lock file the way another process
// would (its own open file description) until the test ends or release
// is called.
func holdFileLock(t *testing.T, d *Driver) (release func()) {
	t.Helper()
	fd, err := syscall.Open(d.lock.path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("flock: %v", err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			syscall.Close(fd)
		}
	}
	t.Cleanup(release)
	return release
}

var lockTestRule = natfw.Rule{
	Owner:   "vm-lock",
	Public:  netip.MustParseAddr("203.0.113.10"),
	Local:   netip.MustParseAddr("192.0.2.10"),
	Ports:   natfw.LinuxPorts(),
	Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
}

// giveUp runs call with a context that ends as end says while the lock is
// held elsewhere, and wants the context's code back soon after it ends.
func giveUp(t *testing.T, end string, call func(context.Context) error) {
	t.Helper()
	var (
		ctx    context.Context
		cancel context.CancelFunc
		want   errs.Code
	)
	const after = 50 * time.Millisecond
	start := time.Now()
	switch end {
	case "deadline":
		ctx, cancel = context.WithTimeout(context.Background(), after)
		want = errs.DeadlineExceeded
	case "cancel":
		ctx, cancel = context.WithCancel(context.Background())
		time.AfterFunc(after, cancel)
		want = errs.Canceled
	}
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- call(ctx) }()
	select {
	case err := <-errc:
		testkit.WantCode(t, "waiter ("+end+")", err, want)
		if took := time.Since(start); took < after {
			t.Fatalf("returned after %v, before the context ended (%v): the lock was not waited for", took, after)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("still waiting for the lock 5 s after the context ended (%s)", end)
	}
}

func TestLockWaitHonoursContext(t *testing.T) {
	calls := map[string]func(d *Driver) func(context.Context) error{
		"EnsureNAT": func(d *Driver) func(context.Context) error {
			return func(ctx context.Context) error { return d.EnsureNAT(ctx, lockTestRule) }
		},
		"RemoveNAT": func(d *Driver) func(context.Context) error {
			return func(ctx context.Context) error { return d.RemoveNAT(ctx, lockTestRule.Owner) }
		},
		"DeleteTable": func(d *Driver) func(context.Context) error { return d.DeleteTable },
	}
	for name, call := range calls {
		for _, end := range []string{"deadline", "cancel"} {
			// Another process holds the file lock.
			t.Run(name+"/OtherProcess/"+end, func(t *testing.T) {
				d := lockTestDriver(t)
				holdFileLock(t, d)
				giveUp(t, end, call(d))
			})
			// Another change through the same Driver is under way.
			t.Run(name+"/SameDriver/"+end, func(t *testing.T) {
				d := lockTestDriver(t)
				release, err := d.lockWrite(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer release()
				giveUp(t, end, call(d))
			})
		}
	}
}

// A waiter gets the lock once the holder lets go, and a waiter that gave
// up leaves the lock usable.
func TestLockWaiterProceeds(t *testing.T) {
	d := lockTestDriver(t)
	release := holdFileLock(t, d)
	giveUp(t, "cancel", func(ctx context.Context) error { _, err := d.lockWrite(ctx); return err })

	got := make(chan error, 1)
	go func() {
		rel, err := d.lockWrite(context.Background())
		if err == nil {
			rel()
		}
		got <- err
	}()
	time.Sleep(30 * time.Millisecond)
	select {
	case err := <-got:
		t.Fatalf("lockWrite returned %v while another process held the lock", err)
	default:
	}
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("lockWrite after the holder let go: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lockWrite still waiting 5 s after the holder let go")
	}
	// Free again: a change proceeds at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	rel, err := d.lockWrite(ctx)
	if err != nil {
		t.Fatalf("lockWrite on a free lock: %v", err)
	}
	rel()
}

// Close while a change waits for the file lock: the waiter ends with
// FailedPrecondition once it gets the lock, without touching the kernel.
func TestLockWaiterSeesClose(t *testing.T) {
	d := lockTestDriver(t)
	release := holdFileLock(t, d)
	errc := make(chan error, 1)
	go func() { errc <- d.EnsureNAT(context.Background(), lockTestRule) }()
	time.Sleep(20 * time.Millisecond)
	if err := d.Close(); err != nil {
		t.Fatalf("Close while a change waits: %v", err)
	}
	release()
	select {
	case err := <-errc:
		testkit.WantCode(t, "waiter after Close", err, errs.FailedPrecondition)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not return after Close and release")
	}
}
