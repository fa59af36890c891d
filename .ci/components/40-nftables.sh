# Sourced by .ci/run (set -euo pipefail, repo root). natfw/nftables tests
# need root, network namespaces (iproute2) and a kernel with nf_tables NAT;
# they build their own throwaway namespaces on TEST-NET addresses and delete
# them. `nft` (Debian's nftables) is only for looking at rules by hand.
# Exports MANAGEDVM_NETNS_OK=1 once a probe namespace could be created, a
# NAT chain added inside it, and the namespace deleted again.
apt_install nftables iproute2
mvm_nft_probe="mvmciprobe-$$"
ip netns add "$mvm_nft_probe"
if ! ip netns exec "$mvm_nft_probe" nft -f - <<'NFT'
table ip mvmprobe {
	chain prerouting { type nat hook prerouting priority dstnat; policy accept; }
}
NFT
then
	ip netns del "$mvm_nft_probe"
	echo "40-nftables: the kernel refused an nftables NAT chain in a namespace" >&2
	exit 1
fi
ip netns del "$mvm_nft_probe"
unset mvm_nft_probe
export MANAGEDVM_NETNS_OK=1
