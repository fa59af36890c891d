package winrmserver_test

import (
	"context"
	"fmt"
	"log"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

// A scripted handler answers by the decoded script and records nothing
// else; tests then assert the exact PowerShell that was sent.
func Example() {
	srv, err := winrmserver.New(winrmserver.Options{
		User: "ops", Password: "example-only",
		Handler: func(_ context.Context, r *winrmserver.Request) int {
			fmt.Fprint(r.Stdout, "handled\r\n")
			return 0
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ex, err := winrm.New(srv.Host(), guest.Password("ops", "example-only"), &winrm.Options{Port: srv.Port(), CACertPEM: srv.CACertPEM()})
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Close()
	out, err := guest.Output(context.Background(), ex, guest.Command{Script: "Get-Date"})
	fmt.Println(out, err)
	fmt.Printf("%q\n", srv.Requests()[0].Script)
	// Output:
	// handled <nil>
	// "$ProgressPreference = 'SilentlyContinue'\n$ErrorActionPreference = 'Stop'\nGet-Date\n"
}
