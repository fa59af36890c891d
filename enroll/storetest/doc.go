// Package storetest is the conformance suite for enroll.Store
// implementations. A driver's test calls Run with a function that returns a
// fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) enroll.StoreDriver { return enroll.NewMemoryStoreDriver(nil) })
//	}
//
// # Cases
//
// CreateGetRoundTrip (every field survives), InvalidJournals
// (InvalidArgument, nothing stored), DuplicateID (ErrJournalExists),
// OneOpenJournalPerVM (ErrVMBusy; closing frees the VM; a closed journal
// cannot be reopened while another is open), UpdateRevisions (stale revision
// -> ErrJournalConflict, nothing changes; ID/Op/VM immutable),
// OpenJournalsOrdered, Cursors, ConcurrentCreatesOneWinner (32 goroutines,
// one VM), ConcurrentUpdatesNoLostWrite and Canceled.
package storetest
