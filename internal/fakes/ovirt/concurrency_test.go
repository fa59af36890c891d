package ovirt_test

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	ovirtsdk "github.com/ovirt/go-ovirt"

	ovirt "github.com/managedvm/managedvm/internal/fakes/ovirt"
)

// TestConcurrentClients runs clients and control calls at once (run with
// -race): every VM added over the API ends up, and the event indexes stay
// strictly increasing.
func TestConcurrentClients(t *testing.T) {
	s := newServer(t, &ovirt.Options{Step: 5 * time.Millisecond})
	if _, err := s.AddVMs("bg", 200); err != nil {
		t.Fatal(err)
	}
	const workers = 12
	var wg sync.WaitGroup
	errc := make(chan error, workers*4)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			sys := connect(t, s).SystemService()
			name := fmt.Sprintf("cc-%02d", w)
			sd := s.Defaults().TemplateStorageID // thin: where the template's disk is
			if w%2 == 0 {
				sd = s.Defaults().VMStorageDomainID
			}
			v, err := sys.VmsService().Add().Vm(addRequest(s, name, sd)).Clone(w%2 == 0).Query("correlation_id", name).Send()
			if err != nil {
				errc <- err
				return
			}
			id := v.MustVm().MustId()
			for i := 0; i < 5; i++ {
				if _, err := sys.VmsService().List().Search(fmt.Sprintf("page %d", i+1)).Max(50).Follow("reported_devices,nics").Send(); err != nil {
					errc <- err
					return
				}
				if _, err := sys.EventsService().List().Max(20).Send(); err != nil {
					errc <- err
					return
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				st := sys.VmsService().VmService(id).Get().MustSend().MustVm().MustStatus()
				if st == ovirtsdk.VMSTATUS_DOWN {
					break
				}
				if time.Now().After(deadline) {
					errc <- fmt.Errorf("%s still %s", name, st)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := sys.VmsService().VmService(id).Start().Send(); err != nil {
				errc <- err
			}
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			id, err := s.AddVM(ovirt.VMSpec{Name: fmt.Sprintf("side-%02d", i), Status: ovirt.StatusUp})
			if err != nil {
				errc <- err
				return
			}
			_ = s.SetIPs(id, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
			_ = s.RenameVM(id, fmt.Sprintf("side-%02d-r", i))
			if i%2 == 0 {
				_ = s.RemoveVM(id)
			}
			_ = s.Stats()
			_ = s.Calls()
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	for w := 0; w < workers; w++ {
		if _, ok := s.VMByName(fmt.Sprintf("cc-%02d", w)); !ok {
			t.Errorf("cc-%02d missing", w)
		}
		if jobs := s.Jobs(fmt.Sprintf("cc-%02d", w)); len(jobs) != 1 || jobs[0].Status != "finished" {
			t.Errorf("cc-%02d jobs %v", w, jobs)
		}
	}
	last := int64(0)
	for _, e := range s.Events() {
		if e.Index <= last {
			t.Fatalf("index %d after %d", e.Index, last)
		}
		last = e.Index
	}
	if st := s.Stats(); st.Logins != workers {
		t.Errorf("logins %d, want %d", st.Logins, workers)
	}
}
