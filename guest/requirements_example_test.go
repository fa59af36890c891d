package guest_test

import (
	"context"
	"fmt"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
)

func ExampleCheckRequirements() {
	// A scripted Debian 12 guest with 2 GiB free on /.
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("/etc/os-release", memguest.Reply("ID=debian\nVERSION_ID=12\n__MANAGEDVM_UNAME__\n6.1\nx86_64\n__MANAGEDVM_EXTRA__\n"))
	ex.HandleArgsPrefix([]string{"df"}, memguest.Reply("Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 20511312 9000000 2097152 45% /\n"))

	rep, err := guest.CheckRequirements(context.Background(), ex.Executor(), guest.Linux, guest.Requirements{
		Distributions:  map[string]string{"debian": "11", "rhel": "8"},
		MinFreeDiskMiB: 4096,
	})
	for _, c := range rep.Checks {
		fmt.Printf("%s %s: %s\n", c.Status, c.ID, c.Detail)
	}
	fmt.Println(rep.OK(), err)
	// Output:
	// pass os.distribution: debian 12
	// fail os.disk: 2048 MiB free, 4096 MiB needed
	// false <nil>
}
