//go:build linux

package nftables

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/managedvm/managedvm/errs"
)

// changeLock serializes changes to one table of one network namespace
// across Drivers and processes on the host: an flock(2) on a file named
// after the namespace's inode and the table. The file holds no state; the
// kernel stays the only source of truth. Without it, two writers could both
// read a free address and both commit it.
type changeLock struct{ path string }

// While another holder has the file lock, lock tries again after
// lockPollMin, doubling up to lockPollMax: flock(2) has no timeout and a
// blocked flock cannot be interrupted, so a waiter that must honour its
// context polls with LOCK_NB instead.
const (
	lockPollMin = 250 * time.Microsecond
	lockPollMax = 10 * time.Millisecond
)

func newChangeLock(dir, nsPath, table string) (*changeLock, error) {
	if dir == "" {
		dir = "/run/lock"
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			dir = os.TempDir()
		}
	}
	if nsPath == "" {
		nsPath = "/proc/self/ns/net"
	}
	var st syscall.Stat_t
	if err := syscall.Stat(nsPath, &st); err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	name := fmt.Sprintf("managedvm-nftables-%d-%d-%s.lock", st.Dev, st.Ino, hex.EncodeToString([]byte(table)))
	return &changeLock{path: filepath.Join(dir, name)}, nil
}

// lock waits until this caller holds the lock or ctx is done (then the
// context's Canceled or DeadlineExceeded); unlock releases it.
func (l *changeLock) lock(ctx context.Context) (unlock func(), err error) {
	fd, err := syscall.Open(l.path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, "", fmt.Errorf("change lock %s: %w", l.path, err))
	}
	var (
		wait  = lockPollMin
		timer *time.Timer
	)
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			if timer != nil {
				timer.Stop()
			}
			return func() { syscall.Close(fd) }, nil
		}
		if err == syscall.EINTR {
			continue
		}
		if err != syscall.EWOULDBLOCK {
			syscall.Close(fd)
			return nil, errs.Wrap(errs.Unavailable, "", fmt.Errorf("change lock %s: %w", l.path, err))
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			syscall.Close(fd)
			return nil, errs.FromContext(ctx, "")
		case <-timer.C:
		}
		wait = min(2*wait, lockPollMax)
	}
}
