package natfw_test

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/natfw"
)

func ExampleRule_Normalize() {
	r := natfw.Rule{
		Owner:   "vsphere-prod/4213-aa",
		Public:  netip.MustParseAddr("203.0.113.10"),
		Local:   netip.MustParseAddr("10.0.0.10"),
		Ports:   slices.Concat(natfw.WindowsPorts(), []natfw.Port{{Protocol: natfw.TCP, Number: 3389}}),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.77/24")},
	}
	fmt.Println(r.Validate())
	n := r.Normalize()
	fmt.Println(n.Ports, n.Sources)
	fmt.Println(r.Equal(n))
	// Output:
	// <nil>
	// [tcp/3389 tcp/5985 tcp/5986] [198.51.100.0/24]
	// true
}

func ExampleParsePort() {
	p, err := natfw.ParsePort("tcp/22")
	fmt.Println(p, err)
	_, err = natfw.ParsePort("tcp/0")
	fmt.Println(errs.CodeOf(err))
	// Output:
	// tcp/22 <nil>
	// InvalidArgument
}

func ExampleRule_Validate() {
	r := natfw.Rule{
		Owner:   "vm-1",
		Public:  netip.MustParseAddr("2001:db8::1"),
		Local:   netip.MustParseAddr("10.0.0.10"),
		Ports:   natfw.LinuxPorts(),
		Sources: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	}
	err := r.Validate()
	fmt.Println(errs.CodeOf(err))
	fmt.Println(err)
	// Output:
	// InvalidArgument
	// natfw.Rule: rule for "vm-1": public address 2001:db8::1 is not an IPv4 address
}
