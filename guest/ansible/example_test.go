package ansible_test

import (
	"fmt"

	"github.com/managedvm/managedvm/errs"
	"github.com/managedvm/managedvm/guest"
	"github.com/managedvm/managedvm/guest/ansible"
)

func ExampleNew() {
	key := guest.Credentials{Username: "mvm-ops", PrivateKey: guest.NewSecret("-----BEGIN OPENSSH PRIVATE KEY-----\n...")}

	// Host keys are required: known_hosts data, or the explicit opt-out
	// (the zero HostKeys is refused).
	_, err := ansible.New("site.yml", key, ansible.HostKeys{}, nil)
	fmt.Println(errs.CodeOf(err))

	knownHosts := []byte("203.0.113.7 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
	r, err := ansible.New("site.yml", key, ansible.KnownHosts(knownHosts), &ansible.Options{
		ExtraVars: map[string]any{"ntp_server": "192.0.2.1"},
		Check:     true,
	})
	fmt.Println(r != nil, err)
	// Output:
	// InvalidArgument
	// true <nil>
}
