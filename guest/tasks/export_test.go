package tasks

// Exported for the black-box tests.

// ShScript builds a Linux task script from a body and variables.
func ShScript(check bool, body string, vars ...[2]string) string {
	kvs := make([]kv, len(vars))
	for i, v := range vars {
		kvs[i] = kv{v[0], v[1]}
	}
	return shScript(check, body, kvs...)
}

// PsScript builds a Windows task script from a body and variables.
func PsScript(check bool, body string, vars ...[2]string) string {
	kvs := make([]kv, len(vars))
	for i, v := range vars {
		kvs[i] = kv{v[0], v[1]}
	}
	return psScript(check, body, kvs...)
}

const (
	ShPrelude = shPrelude
	PsPrelude = psPrelude
	PsFinish  = psFinish
)

// LinuxBodies and WindowsBodies are every task body: the only text that
// follows the quoted variables.
var (
	LinuxBodies   = []string{userBody, userAbsentBody, keyBody, keyAbsentBody, sudoersBody, packageBody, serviceBody, fileBody, fileAbsentBody, hostnameBody, lineBody}
	WindowsBodies = []string{winUserBody, winUserAbsentBody, winGroupMemberBody, winServiceBody, winFileBody, registryBody}
)
