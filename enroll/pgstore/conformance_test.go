package pgstore_test

import (
	"testing"

	"github.com/managedvm/managedvm/enroll"
	"github.com/managedvm/managedvm/enroll/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) enroll.Store {
		s, _ := newStore(t, 8)
		return s
	})
}
