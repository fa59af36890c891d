package check

import (
	"testing"

	"github.com/managedvm/managedvm/errs"
)

func TestChecks(t *testing.T) {
	for _, c := range []struct {
		err  error
		want errs.Code
	}{
		{Name("op", ""), errs.InvalidArgument},
		{Name("op", "p"), errs.OK},
		{Owner("op", "", "o"), errs.InvalidArgument},
		{Owner("op", "p", ""), errs.InvalidArgument},
		{Owner("op", "p", "o"), errs.OK},
		{NoPool("op", "p"), errs.NotFound},
		{NotHeld("op", "p", "o"), errs.NotFound},
	} {
		if got := errs.CodeOf(c.err); got != c.want {
			t.Errorf("%v: code %v, want %v", c.err, got, c.want)
		}
	}
}
