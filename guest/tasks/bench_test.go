package tasks_test

import (
	"context"
	"os"
	"testing"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/tasks"
	"github.com/managedvm/managedvm/internal/testenv"
)

// BenchmarkEnrollmentTaskSet times the native enrollment task set (user,
// key, sudoers drop-in, one package already installed) against Debian's
// sshd over one reused connection: the first apply (everything changes),
// a re-apply (nothing changes), check mode, and the revert.
//
// "root" logs in as root (login shell bash, which on the CI machine reads
// a costly ~/.bashrc for every command); "sudo-user" logs in as the CI's
// password user (login shell /bin/sh) and runs every task through sudo
// with the password on stdin, as with a customer's account.
func BenchmarkEnrollmentTaskSet(b *testing.B) {
	b.Run("root", func(b *testing.B) { benchEnrollment(b, dialRoot(b), dialRoot(b)) })
	b.Run("sudo-user", func(b *testing.B) {
		pwUser, pw := os.Getenv("MANAGEDVM_SSHD_PW_USER"), os.Getenv("MANAGEDVM_SSHD_PW_PASSWORD")
		if pwUser == "" {
			b.Skip("no MANAGEDVM_SSHD_PW_USER")
		}
		benchEnrollment(b, dial(b, testenv.Env(b, "MANAGEDVM_SSHD_ADDR", "OpenSSH sshd", how), guest.Password(pwUser, pw)), dialRoot(b))
	})
}

func benchEnrollment(b *testing.B, ex, root *guest.Executor) {
	ctx := context.Background()
	_, key := newKey(b)
	set := func(user string) *tasks.Set {
		ts, err := tasks.Enrollment(tasks.Operator{User: user, AuthorizedKeys: []string{key}, Packages: []string{"openssh-server"}})
		if err != nil {
			b.Fatal(err)
		}
		return tasks.NewSet(ts, nil)
	}
	cleanup := func(user string) {
		_, _ = root.Run(ctx, guest.Command{Script: "userdel -r " + user + " 2>/dev/null; rm -f /etc/sudoers.d/managedvm-" + user})
	}
	b.Run("first-apply", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			user := uniqueName("mvmb")
			s := set(user)
			b.StartTimer()
			rep, err := s.Apply(ctx, ex)
			b.StopTimer()
			if err != nil || rep.Changed() != 3 {
				b.Fatalf("%v %+v", err, rep)
			}
			if _, err := s.Revert(ctx, ex); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	user := uniqueName("mvmb")
	s := set(user)
	defer cleanup(user)
	if _, err := s.Apply(ctx, ex); err != nil {
		b.Fatal(err)
	}
	b.Run("reapply-unchanged", func(b *testing.B) {
		for b.Loop() {
			rep, err := s.Apply(ctx, ex)
			if err != nil || rep.Changed() != 0 {
				b.Fatalf("%v %+v", err, rep)
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Check(ctx, ex); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("revert", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			if _, err := s.Apply(ctx, ex); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := s.Revert(ctx, ex); err != nil {
				b.Fatal(err)
			}
		}
	})
}
