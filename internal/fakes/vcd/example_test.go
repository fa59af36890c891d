package vcd_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"

	"github.com/vmware/go-vcloud-director/v2/govcd"

	"github.com/managedvm/managedvm/internal/fakes/vcd"
)

// Example logs in with the SDK over verified TLS and lists the VMs of the
// default fixture through the query service.
func Example() {
	s := vcd.New(nil)
	defer s.Close()
	if _, err := s.AddVM(vcd.VMSpec{Name: "web-1", PoweredOn: true}); err != nil {
		panic(err)
	}

	u, _ := url.Parse(s.APIURL())
	c := govcd.NewVCDClient(*u, false, govcd.WithAPIVersion("37.0"))
	c.Client.Http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool()}}
	o := s.Options()
	if err := c.Authenticate(o.User, o.Password, o.Org); err != nil {
		panic(err)
	}
	defer c.Disconnect()

	res, err := c.Client.QueryWithNotEncodedParams(nil, map[string]string{
		"type": "vm", "format": "records", "filter": "isVAppTemplate==false", "filterEncoded": "true"})
	if err != nil {
		panic(err)
	}
	for _, r := range res.Results.VMRecord {
		fmt.Println(r.Name, r.Status, r.VdcName, r.IpAddress)
	}
	// Output: web-1 POWERED_ON vdc1 10.10.1.1
}
