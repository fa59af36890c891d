package ovirt

// op names the package in the errors of New; the driver methods return
// errors with no Op, which the portable *provider.Provider names.
const op = "ovirt"
