//go:build unix

package ansible

import (
	"os/exec"
	"syscall"
)

// inProcessGroup starts cmd in a process group of its own and makes its
// cancellation kill the whole group: ansible-playbook, its workers and
// their ssh clients.
func inProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// killGroup kills what is left of cmd's process group.
func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
