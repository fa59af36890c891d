package vsphere

// VMProps exposes the properties List reads, so that the benchmark's
// per-VM loop reads exactly the same ones.
var VMProps = vmProps

// SetAfterView makes f run in every List between reading the VM
// references and reading their properties.
func SetAfterView(p *Provider, f func()) { p.afterView = f }
