package winrm_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/winrm"
	"github.com/managedvm/managedvm/internal/fakes/winrmserver"
)

func Example() {
	// A fake Windows guest: a WS-Management server over TLS with a test CA.
	root, err := os.MkdirTemp("", "winrm-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	in := winrmserver.NewInterpreter(winrmserver.InterpreterOptions{Root: root})
	srv, err := winrmserver.New(winrmserver.Options{User: "ops", Domain: "CORP", Password: "example-only", Handler: in.Handler})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ex, err := winrm.New(srv.Host(), guest.Password(`CORP\ops`, "example-only"), &winrm.Options{
		Port:      srv.Port(),
		CACertPEM: srv.CACertPEM(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ex.Close()

	ctx := context.Background()
	out, err := guest.Output(ctx, ex, guest.Command{Args: []string{"Write-Output", "it's $HOME; no quoting needed"}})
	fmt.Println(out, err)

	_, err = ex.Run(ctx, guest.Command{Script: "exit 3"})
	fmt.Println(err)

	f, err := guest.DetectFacts(ctx, ex)
	fmt.Println(f.Name, f.Version, err)
	// Output:
	// it's $HOME; no quoting needed <nil>
	// guest.Run: script (6 bytes) exited with code 3
	// Microsoft Windows Server 2022 Datacenter 10.0.20348 <nil>
}
