package tasks

import (
	"strings"

	"github.com/managedvm/managedvm/guest"
)

// Every task is one script: a header that assigns the task's values to
// variables, each quoted by the library (guest.ShellQuote or
// guest.PowerShellQuote), followed by a constant body that only ever uses
// those variables. No input reaches the body's text, so no input can
// inject commands.

const resultPrefix = "MANAGEDVM-TASK:"

// shPrelude defines the helpers every Linux task body uses: change runs a
// command unless in check mode and marks the task changed; fail reports an
// error; finish prints the result marker.
const shPrelude = `set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
mvm_changed=0
change() { mvm_changed=1; if [ "$MVM_CHECK" = 1 ]; then return 0; fi; "$@"; }
fail() { printf '%s\n' "$*" >&2; exit 3; }
needs() { if [ "$MVM_CHECK" = 1 ]; then mvm_changed=1; finish; fi; fail "$@"; }
finish() { if [ "$mvm_changed" = 1 ]; then echo ` + resultPrefix + `changed; else echo ` + resultPrefix + `ok; fi; exit 0; }
`

type kv struct{ k, v string }

// shScript builds a Linux task script.
func shScript(check bool, body string, vars ...kv) string {
	var b strings.Builder
	if check {
		b.WriteString("MVM_CHECK=1\n")
	} else {
		b.WriteString("MVM_CHECK=0\n")
	}
	for _, x := range vars {
		b.WriteString(x.k)
		b.WriteByte('=')
		b.WriteString(guest.ShellQuote(x.v))
		b.WriteByte('\n')
	}
	b.WriteString(shPrelude)
	b.WriteString(body)
	b.WriteString("\nfinish\n")
	return b.String()
}

// psPrelude is the PowerShell counterpart of shPrelude.
const psPrelude = `$ErrorActionPreference = 'Stop'
$script:MvmChanged = $false
function Invoke-MvmChange([scriptblock]$Action) { $script:MvmChanged = $true; if (-not $MvmCheck) { & $Action } }
`

const psFinish = `
if ($script:MvmChanged) { Write-Output '` + resultPrefix + `changed' } else { Write-Output '` + resultPrefix + `ok' }
exit 0
`

// psScript builds a Windows task script.
func psScript(check bool, body string, vars ...kv) string {
	var b strings.Builder
	if check {
		b.WriteString("$MvmCheck = $true\n")
	} else {
		b.WriteString("$MvmCheck = $false\n")
	}
	for _, x := range vars {
		b.WriteString("$" + x.k + " = " + guest.PowerShellQuote(x.v) + "\n")
	}
	b.WriteString(psPrelude)
	b.WriteString(body)
	b.WriteString(psFinish)
	return b.String()
}
