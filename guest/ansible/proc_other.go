//go:build !unix

package ansible

import "os/exec"

// inProcessGroup: ansible-playbook runs only on Unix-like control nodes;
// elsewhere cancellation kills the process itself (exec's default).
func inProcessGroup(*exec.Cmd) {}

// killGroup: no process groups here; the process has exited.
func killGroup(*exec.Cmd) {}
