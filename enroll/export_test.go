package enroll

// SetHook installs a hook called at fixed points of every run
// ("before:STEP", "after-do:STEP", "after-save:STEP", "undo:STEP"). Tests
// panic in it to simulate a crash.
func SetHook(o *Orchestrator, h func(point string)) { o.hook = h }
