//go:build linux

package nftables

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"syscall"

	nft "github.com/google/nftables"
	"github.com/google/nftables/expr"

	"github.com/managedvm/managedvm/natfw"
)

// The chains of the driver's table.
const (
	chainPre     = "prerouting"
	chainPost    = "postrouting"
	chainForward = "forward"
)

// Userdata (NFTA_RULE_USERDATA) is a list of type-length-value records. The
// owner travels in the comment record (type 0, NUL-terminated, shown by
// `nft list ruleset` as comment "mvm:OWNER"); the description in a record of
// its own on the DNAT rule.
const (
	udComment     = 0    // libnftnl NFTNL_UDATA_RULE_COMMENT
	udDescription = 0xf2 // private to this driver
	ownerPrefix   = "mvm:"
	baseComment   = "managedvm: established,related"
)

// The kernel keeps at most 256 bytes of userdata per rule: the owner's
// comment record and the description's record of the longest owner and
// description the portable type lets through must fit. (A negative array
// length stops the build if natfw's limits ever grow past it.)
var _ [256 - (2 + len(ownerPrefix) + natfw.MaxOwner + 1) - (2 + natfw.MaxDescription + 1)]struct{}

// Network-header offsets of the IPv4 addresses, transport-header offset of
// the destination port.
const (
	offSaddr = 12
	offDaddr = 16
	offDport = 2
)

const nfprotoIPv4 = syscall.AF_INET // NFPROTO_IPV4 == AF_INET

func udAppend(ud []byte, typ byte, s string) []byte {
	data := append([]byte(s), 0)
	ud = append(ud, typ, byte(len(data)))
	return append(ud, data...)
}

// udGet returns the string record typ of ud. Unlike userdata.Get it never
// panics on a malformed list (a rule someone else wrote).
func udGet(ud []byte, typ byte) (string, bool) {
	for len(ud) >= 2 {
		t, n := ud[0], int(ud[1])
		if len(ud) < 2+n {
			return "", false
		}
		if t == typ {
			return string(bytes.TrimSuffix(ud[2:2+n], []byte{0})), true
		}
		ud = ud[2+n:]
	}
	return "", false
}

func ownerData(owner string) []byte { return udAppend(nil, udComment, ownerPrefix+owner) }

// ifname pads an interface name to IFNAMSIZ, as the kernel compares it.
func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func addr4(a netip.Addr) []byte { b := a.As4(); return b[:] }

func loadAddr(off uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4}
}

func eq(data []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data} }

func matchIface(key expr.MetaKey, name string) []expr.Any {
	if name == "" {
		return nil
	}
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, eq(ifname(name))}
}

// kernelRules returns the kernel rules of r, each tagged with the owner:
// DNAT in prerouting, SNAT in postrouting, then in forward one accept per
// (source, port) and a final drop of everything else to the local address.
func (f *Driver) kernelRules(r natfw.Rule) []*nft.Rule {
	owner := ownerData(r.Owner)
	dnat := &nft.Rule{
		Table: f.table, Chain: f.chains[chainPre],
		Exprs: append(matchIface(expr.MetaKeyIIFNAME, f.wan), loadAddr(offDaddr), eq(addr4(r.Public)),
			&expr.Immediate{Register: 1, Data: addr4(r.Local)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: nfprotoIPv4, RegAddrMin: 1}),
		UserData: udAppend(ownerData(r.Owner), udDescription, r.Description),
	}
	snat := &nft.Rule{
		Table: f.table, Chain: f.chains[chainPost],
		Exprs: append(matchIface(expr.MetaKeyOIFNAME, f.wan), loadAddr(offSaddr), eq(addr4(r.Local)),
			&expr.Immediate{Register: 1, Data: addr4(r.Public)},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: nfprotoIPv4, RegAddrMin: 1}),
		UserData: owner,
	}
	out := []*nft.Rule{dnat, snat}
	for _, s := range r.Sources {
		mask := net4Mask(s.Bits())
		for _, p := range r.Ports {
			proto := byte(syscall.IPPROTO_TCP)
			if p.Protocol == natfw.UDP {
				proto = syscall.IPPROTO_UDP
			}
			port := binary.BigEndian.AppendUint16(nil, p.Number)
			exprs := append(matchIface(expr.MetaKeyIIFNAME, f.wan),
				loadAddr(offDaddr), eq(addr4(r.Local)),
				loadAddr(offSaddr),
				&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
				eq(addr4(s.Addr())),
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq([]byte{proto}),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offDport, Len: 2}, eq(port),
				&expr.Verdict{Kind: expr.VerdictAccept})
			out = append(out, &nft.Rule{Table: f.table, Chain: f.chains[chainForward], Exprs: exprs, UserData: owner})
		}
	}
	drop := append(matchIface(expr.MetaKeyIIFNAME, f.wan), loadAddr(offDaddr), eq(addr4(r.Local)),
		&expr.Verdict{Kind: expr.VerdictDrop})
	out = append(out, &nft.Rule{Table: f.table, Chain: f.chains[chainForward], Exprs: drop, UserData: owner})
	return out
}

// baseRule accepts the rest of connections already allowed (and the
// replies to the VMs' own outbound connections) before any drop.
func (f *Driver) baseRule() *nft.Rule {
	return &nft.Rule{
		Table: f.table, Chain: f.chains[chainForward],
		Exprs: []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binary.NativeEndian.AppendUint32(nil, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED),
				Xor:  make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
		UserData: udAppend(nil, udComment, baseComment),
	}
}

func net4Mask(bits int) []byte {
	m := make([]byte, 4)
	binary.BigEndian.PutUint32(m, ^uint32(0)<<(32-bits))
	if bits == 0 {
		clear(m)
	}
	return m
}

// piece is what one kernel rule says about its owner's rule.
type piece struct {
	owner  string
	handle uint64
	chain  string
	kind   pieceKind
	desc   string
	public netip.Addr // dnat: matched; snat: translated to
	local  netip.Addr // dnat: translated to; snat, accept, drop: matched
	source netip.Prefix
	port   natfw.Port
}

type pieceKind int

const (
	kindUnknown pieceKind = iota
	kindDNAT
	kindSNAT
	kindAccept
	kindDrop
)

// decode reads a rule the driver wrote. ok is false for a rule without an
// owner tag (the base rule, or a foreign rule in the table).
func decode(chain string, r *nft.Rule) (p piece, ok bool) {
	c, found := udGet(r.UserData, udComment)
	if !found || len(c) <= len(ownerPrefix) || c[:len(ownerPrefix)] != ownerPrefix {
		return piece{}, false
	}
	p = piece{owner: c[len(ownerPrefix):], handle: r.Handle, chain: chain}
	p.desc, _ = udGet(r.UserData, udDescription)

	type field int
	const (
		none field = iota
		daddr
		saddr
		l4proto
		dport
		iface
	)
	var (
		loaded field
		mask   []byte
		imm    []byte
		proto  byte
		port   uint16
	)
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Payload:
			mask = nil
			switch {
			case e.Base == expr.PayloadBaseNetworkHeader && e.Offset == offDaddr && e.Len == 4:
				loaded = daddr
			case e.Base == expr.PayloadBaseNetworkHeader && e.Offset == offSaddr && e.Len == 4:
				loaded = saddr
			case e.Base == expr.PayloadBaseTransportHeader && e.Offset == offDport && e.Len == 2:
				loaded = dport
			default:
				loaded = none
			}
		case *expr.Meta:
			mask = nil
			switch e.Key {
			case expr.MetaKeyL4PROTO:
				loaded = l4proto
			case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME:
				loaded = iface
			default:
				loaded = none
			}
		case *expr.Bitwise:
			mask = e.Mask
		case *expr.Cmp:
			switch loaded {
			case daddr:
				if a, ok := netip.AddrFromSlice(e.Data); ok {
					if chain == chainPre {
						p.public = a
					} else {
						p.local = a
					}
				}
			case saddr:
				a, ok := netip.AddrFromSlice(e.Data)
				if !ok {
					break
				}
				if mask == nil {
					p.local = a
				} else if len(mask) == 4 {
					bits := 0
					for m := binary.BigEndian.Uint32(mask); m&(1<<31) != 0; m <<= 1 {
						bits++
					}
					p.source = netip.PrefixFrom(a, bits)
				}
			case l4proto:
				if len(e.Data) == 1 {
					proto = e.Data[0]
				}
			case dport:
				if len(e.Data) == 2 {
					port = binary.BigEndian.Uint16(e.Data)
				}
			}
		case *expr.Immediate:
			imm = e.Data
		case *expr.NAT:
			a, ok := netip.AddrFromSlice(imm)
			if !ok {
				break
			}
			switch e.Type {
			case expr.NATTypeDestNAT:
				p.kind, p.local = kindDNAT, a
			case expr.NATTypeSourceNAT:
				p.kind, p.public = kindSNAT, a
			}
		case *expr.Verdict:
			switch e.Kind {
			case expr.VerdictAccept:
				p.kind = kindAccept
				switch proto {
				case syscall.IPPROTO_TCP:
					p.port = natfw.Port{Protocol: natfw.TCP, Number: port}
				case syscall.IPPROTO_UDP:
					p.port = natfw.Port{Protocol: natfw.UDP, Number: port}
				}
			case expr.VerdictDrop:
				p.kind = kindDrop
			}
		}
	}
	return p, true
}
