package guest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
)

func ExampleShellJoin() {
	fmt.Println(guest.ShellJoin([]string{"useradd", "-c", "Ops user's account", "-m", "ops"}))
	fmt.Println(guest.ShellJoin([]string{"echo", "$HOME", "a;b", ""}))
	// Output:
	// useradd -c 'Ops user'\''s account' -m ops
	// echo '$HOME' 'a;b' ''
}

func ExampleShellCommandLine() {
	fmt.Println(guest.ShellCommandLine(guest.Command{
		Args: []string{"systemctl", "restart", "sshd"},
		Env:  map[string]string{"LANG": "C"},
		Dir:  "/etc/ssh",
	}))
	// Output:
	// cd /etc/ssh && export LANG=C && exec systemctl restart sshd
}

func ExampleEncodePowerShell() {
	script := "Write-Output " + guest.PowerShellQuote("it's $HOME")
	fmt.Println(script)
	enc := guest.EncodePowerShell(script)
	fmt.Println(enc)
	back, _ := guest.DecodePowerShell(enc)
	fmt.Println(back == script)
	// Output:
	// Write-Output 'it''s $HOME'
	// VwByAGkAdABlAC0ATwB1AHQAcAB1AHQAIAAnAGkAdAAnACcAcwAgACQASABPAE0ARQAnAA==
	// true
}

func ExampleCredentials() {
	c := guest.Password("admin", "hunter2")
	fmt.Println(c)
	fmt.Printf("%+v\n", struct{ Creds guest.Credentials }{c})
	fmt.Println(c.Password, c.Password.Reveal() == "hunter2")
	// Output:
	// credentials{user="admin" auth=password}
	// {Creds:credentials{user="admin" auth=password}}
	// [REDACTED] true
}

func ExampleExitError() {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleArgs([]string{"id", "deploy"}, memguest.Exit(1, "", "id: 'deploy': no such user\n"))

	_, err := ex.Executor().Run(context.Background(), guest.Command{Args: []string{"id", "deploy"}})
	var exit *guest.ExitError
	if errors.As(err, &exit) {
		fmt.Println(exit.Code)
	}
	fmt.Println(err)
	// Output:
	// 1
	// guest.Run: command "id" (1 args) exited with code 1: id: 'deploy': no such user
}

func ExampleDetectFacts() {
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("os-release", memguest.Reply("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n__MANAGEDVM_UNAME__\n6.1.0-18-amd64\nx86_64\n"))

	f, err := guest.DetectFacts(context.Background(), ex.Executor())
	fmt.Println(err)
	fmt.Println(f.Distribution, f.Version, f.Arch)
	// Output:
	// <nil>
	// debian 12 x86_64
}
