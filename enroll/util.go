package enroll

import (
	"net/netip"
	"sort"

	"github.com/managedvm/managedvm/ipam"
)

var netipZero netip.Addr

func sortStrings(s []string) { sort.Strings(s) }

func ipamRequest(pool, owner string, local netip.Addr) ipam.Request {
	return ipam.Request{Pool: pool, Owner: owner, LocalIP: local}
}
