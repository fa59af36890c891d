package ovirt_test

import (
	"fmt"
	"time"

	ovirtsdk "github.com/ovirt/go-ovirt"

	ovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
)

// A VM added from a template through go-ovirt, on a manual clock: it is
// image_locked while its disk is made, then down; started, it goes
// through wait_for_launch and powering_up to up.
func Example() {
	clk := ovirt.NewManualClock(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	s := ovirt.New(&ovirt.Options{Now: clk.Now, Step: time.Second})
	defer s.Close()
	conn, err := ovirtsdk.NewConnectionBuilder().URL(s.URL()).
		Username(s.User()).Password(s.Password()).CACert(s.CACertPEM()).Build()
	if err != nil {
		panic(err)
	}
	sys := conn.SystemService()
	for _, t := range sys.TemplatesService().List().MustSend().MustTemplates().Slice() {
		fmt.Println("template", t.MustName())
	}
	d := s.Defaults()
	vm := sys.VmsService().Add().Vm(ovirtsdk.NewVmBuilder().Name("web1").
		Cluster(ovirtsdk.NewClusterBuilder().Id(d.ClusterID).MustBuild()).
		Template(ovirtsdk.NewTemplateBuilder().Id(d.TemplateID).MustBuild()).
		MustBuild()).Query("correlation_id", "req-web1").MustSend().MustVm()
	vs := sys.VmsService().VmService(vm.MustId())
	show := func() { fmt.Println(vs.Get().MustSend().MustVm().MustStatus()) }
	show()
	clk.Advance(time.Second)
	show()
	vs.Start().MustSend()
	for i := 0; i < 3; i++ {
		show()
		clk.Advance(time.Second)
	}
	for _, j := range sys.JobsService().List().Search("correlation_id=req-web1").MustSend().MustJobs().Slice() {
		fmt.Println(j.MustDescription(), j.MustStatus())
	}
	// Output:
	// template Blank
	// template centos9
	// image_locked
	// down
	// wait_for_launch
	// powering_up
	// up
	// Creating VM web1 from Template centos9 in Cluster Default finished
}
