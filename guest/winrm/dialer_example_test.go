package winrm_test

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"os"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

func ExampleDialer() {
	// A fake Windows guest behind its public IP.
	root, err := os.MkdirTemp("", "winrm-dialer-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	in := winrmserver.NewInterpreter(winrmserver.InterpreterOptions{Root: root})
	srv, err := winrmserver.New(winrmserver.Options{User: "ops", Password: "example-only", Handler: in.Handler})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	// What enroll.Config.Dialer is given. The fake listens on a port of
	// its own, so the example sets Options.Port; a real guest is reached
	// on 5986, which the target's ports must include.
	dialer := winrm.Dialer(winrm.DialerConfig{Options: &winrm.Options{Port: srv.Port(), CACertPEM: srv.CACertPEM()}})
	target := guest.Target{VM: "vc/vm-42", Family: guest.Windows, PublicIP: netip.MustParseAddr(srv.Host()),
		Ports: []guest.Port{{Protocol: "tcp", Number: 5986}}}

	ctx := context.Background()
	ex, err := dialer.Dial(ctx, target, guest.Password("ops", "example-only"))
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Close()
	out, err := guest.Output(ctx, ex, guest.Command{Args: []string{"Write-Output", "reached"}})
	fmt.Println(out, err)

	_, err = dialer.Dial(ctx, target, guest.Password("ops", "wrong"))
	fmt.Println(errs.CodeOf(err))
	// Output:
	// reached <nil>
	// Unauthenticated
}
