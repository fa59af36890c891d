package ovirt

// SetAfterPage installs a hook run after each page List reads.
func (p *Provider) SetAfterPage(f func(pass, page int)) { p.afterPage = f }

// CorrelationID exposes the key's correlation id.
var CorrelationID = correlationID
