package vsphere

// VMProps exposes the properties List reads, so that the benchmark's
// per-VM loop reads exactly the same ones.
var VMProps = vmProps
