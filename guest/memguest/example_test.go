package memguest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
)

func Example() {
	ctx := context.Background()
	ex := memguest.NewDriver(guest.Linux, nil)
	defer ex.Executor().Close()

	ex.HandleArgs([]string{"hostname"}, memguest.Reply("web-01\n"))
	ex.HandleArgsPrefix([]string{"systemctl", "is-active"}, memguest.Exit(3, "inactive\n", ""))

	name, _ := guest.Output(ctx, ex.Executor(), guest.Command{Args: []string{"hostname"}})
	fmt.Println(name)

	_, err := ex.Executor().Run(ctx, guest.Command{Args: []string{"systemctl", "is-active", "nginx"}})
	var exit *guest.ExitError
	fmt.Println(errors.As(err, &exit), exit.Code, errs.CodeOf(err))

	for _, c := range ex.Commands() {
		fmt.Println(c.Args)
	}
	// Output:
	// web-01
	// true 3 FailedPrecondition
	// [hostname]
	// [systemctl is-active nginx]
}

func ExampleDriver_Upload() {
	ctx := context.Background()
	ex := memguest.NewDriver(guest.Linux, nil)
	err := ex.Executor().Upload(ctx, "/etc/motd", strings.NewReader("managed by managedvm\n"), guest.UploadOptions{Owner: "root"})
	fmt.Println(err)
	f, _ := ex.File("/etc/motd")
	fmt.Printf("%q %v %s\n", f.Content, f.Mode, f.Owner)
	// Output:
	// <nil>
	// "managed by managedvm\n" -rw-r--r-- root
}

func ExampleDriver_SimulateSessionLoss() {
	ctx := context.Background()
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleDefault(memguest.Reply(""))

	ex.SimulateSessionLoss(true) // the command runs, its answer is lost
	_, err := ex.Executor().Run(ctx, guest.Command{Args: []string{"useradd", "svc"}})
	fmt.Println(errors.Is(err, guest.ErrSessionLost), errs.CodeOf(err))
	// Output:
	// true OutcomeUnknown
}

func ExampleDriver_HandleDefault() {
	ctx := context.Background()
	ex := memguest.NewDriver(guest.Linux, nil)
	// A default handler can emulate whatever the test needs.
	ex.HandleDefault(func(_ context.Context, cmd guest.Command) (guest.Result, error) {
		if len(cmd.Args) > 0 && cmd.Args[0] == "echo" {
			return guest.Result{Stdout: []byte(strings.Join(cmd.Args[1:], " ") + "\n")}, nil
		}
		return guest.Result{ExitCode: 127}, nil
	})
	out, err := guest.Output(ctx, ex.Executor(), guest.Command{Args: []string{"echo", "hello", "guest"}})
	fmt.Println(out, err)
	// Output:
	// hello guest <nil>
}
