package pgipam

import "net/netip"

// addrArg passes a as an inet parameter: NULL for the zero address.
func addrArg(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a
}
