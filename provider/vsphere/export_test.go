package vsphere

import "github.com/managedvm/managedvm/provider"

// VMProps exposes the properties List reads, so that the benchmark's
// per-VM loop reads exactly the same ones.
var VMProps = vmProps

// SetAfterView makes f run in every List of p's driver between reading
// the VM references and reading their properties.
func SetAfterView(p *provider.Provider, f func()) {
	var d *Provider
	if !p.As(&d) {
		panic("not a vsphere driver")
	}
	d.afterView = f
}
