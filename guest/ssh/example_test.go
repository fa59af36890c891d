package ssh_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ssh"
	"github.com/managedvm/managedvm/internal/fakes/sshserver"
	xssh "golang.org/x/crypto/ssh"
)

// A client key and an in-process server for the examples.
func exampleServer() (*sshserver.Server, guest.Credentials) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, _ := xssh.MarshalPrivateKey(priv, "")
	sp, _ := xssh.NewPublicKey(pub)
	srv, err := sshserver.Start(sshserver.Config{AuthorizedKeys: []xssh.PublicKey{sp}})
	if err != nil {
		panic(err)
	}
	return srv, guest.Credentials{Username: "root", PrivateKey: guest.NewSecret(string(pem.EncodeToMemory(block)))}
}

func ExampleDial() {
	srv, cred := exampleServer()
	defer srv.Close()
	ctx := context.Background()

	// Host keys come from known_hosts data the application stores.
	hk, err := ssh.KnownHosts(srv.KnownHosts())
	if err != nil {
		panic(err)
	}
	ex, err := ssh.Dial(ctx, ssh.Config{Addr: srv.Addr(), Credentials: cred, HostKeys: hk}, nil)
	if err != nil {
		panic(err)
	}
	defer ex.Close()

	out, err := guest.Output(ctx, ex, guest.Command{Args: []string{"echo", "it's $HOME; `id`"}})
	fmt.Println(out, err)

	_, err = ex.Run(ctx, guest.Command{Script: "exit 3"})
	var ee *guest.ExitError
	fmt.Println(errors.As(err, &ee), ee.Code, errs.CodeOf(err))
	// Output:
	// it's $HOME; `id` <nil>
	// true 3 FailedPrecondition
}

func ExampleTrustOnFirstUse() {
	srv, cred := exampleServer()
	defer srv.Close()

	// A new VM: its key is unknown. Learn it, and store the line.
	var stored []string
	hk, _ := ssh.TrustOnFirstUse(nil, func(host, line string) error {
		stored = append(stored, line)
		return nil
	})
	ex, err := ssh.Dial(context.Background(), ssh.Config{Addr: srv.Addr(), Credentials: cred, HostKeys: hk}, nil)
	if err != nil {
		panic(err)
	}
	_ = ex.Close()
	fmt.Println(len(stored), hk)

	// The next time, the stored line is checked.
	other, _ := exampleServer()
	defer other.Close()
	known := []byte(stored[0] + "\n")
	strict, _ := ssh.KnownHosts(known)
	_, err = ssh.Dial(context.Background(), ssh.Config{Addr: other.Addr(), Credentials: cred, HostKeys: strict}, nil)
	var he *ssh.HostKeyError
	fmt.Println(errors.As(err, &he), errs.CodeOf(err))
	// Output:
	// 1 trust-on-first-use
	// true PermissionDenied
}
