package check

import "github.com/managedvm/managedvm/errs"

// Name is InvalidArgument if no pool is named.
func Name(op, pool string) error {
	if pool == "" {
		return errs.New(errs.InvalidArgument, op, "no pool named")
	}
	return nil
}

// Owner is InvalidArgument if no pool or no owner is named.
func Owner(op, pool, owner string) error {
	if err := Name(op, pool); err != nil {
		return err
	}
	if owner == "" {
		return errs.New(errs.InvalidArgument, op, "no owner named")
	}
	return nil
}

// NoPool is the NotFound error for a pool that does not exist.
func NoPool(op, name string) error {
	return errs.Errorf(errs.NotFound, op, "no pool %q", name)
}

// NotHeld is the NotFound error for an owner that holds no address.
func NotHeld(op, pool, owner string) error {
	return errs.Errorf(errs.NotFound, op, "owner %q holds no address in pool %q", owner, pool)
}
