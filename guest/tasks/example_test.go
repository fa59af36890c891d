package tasks_test

import (
	"context"
	"fmt"

	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/memguest"
	"github.com/managedvm/managedvm/guest/tasks"
)

func ExampleEnrollment() {
	ts, err := tasks.Enrollment(tasks.Operator{
		User:           "mvm-ops",
		AuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops"},
		Packages:       []string{"python3"},
	})
	if err != nil {
		panic(err)
	}
	set := tasks.NewSet(ts, nil)
	for _, t := range set.Tasks() {
		fmt.Println(t.Describe())
	}
	fmt.Println("reversed:")
	for _, t := range set.Reversed() {
		fmt.Println(t.Describe())
	}
	// Output:
	// user mvm-ops
	// authorized key SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU for mvm-ops
	// sudoers drop-in managedvm-mvm-ops
	// package python3
	// reversed:
	// file /etc/sudoers.d/managedvm-mvm-ops absent
	// authorized key SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU for mvm-ops absent
	// user mvm-ops absent
}

func ExampleSet_Check() {
	// A scripted guest where the package is already installed and the
	// user is missing.
	ex := memguest.NewDriver(guest.Linux, nil)
	ex.HandleScript("pkg=python3", memguest.Reply("MANAGEDVM-TASK:ok\n"))
	ex.HandleScript("useradd", memguest.Reply("MANAGEDVM-TASK:changed\n"))

	set := tasks.NewSet([]tasks.Task{tasks.User{Name: "mvm-ops"}, tasks.Package{Package: "python3"}}, nil)
	rep, err := set.Check(context.Background(), ex.Executor())
	fmt.Println(rep, err)
	for _, r := range rep.Results {
		fmt.Println(r.Task, r.Changed, r.Check)
	}
	// Output:
	// 2 tasks, 1 changed <nil>
	// user mvm-ops true true
	// package python3 false true
}
