//go:build linux

package nftables

import (
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// changeLock serializes changes to one table of one network namespace
// across Drivers and processes on the host: an flock(2) on a file named
// after the namespace's inode and the table. The file holds no state; the
// kernel stays the only source of truth. Without it, two writers could both
// read a free address and both commit it.
type changeLock struct{ path string }

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

// lock blocks until this caller holds the lock; unlock releases it.
func (l *changeLock) lock() (unlock func(), err error) {
	fd, err := syscall.Open(l.path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("change lock %s: %w", l.path, err)
	}
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("change lock %s: %w", l.path, err)
	}
	return func() { syscall.Close(fd) }, nil
}
