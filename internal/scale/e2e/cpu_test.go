//go:build linux

package e2e_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of /proc/PID/stat times
// (100 on every Linux this runs on).
const clockTick = 10 * time.Millisecond

type procStat struct {
	ppid int
	// cpu is utime+stime+cutime+cstime: the process's own CPU time and
	// that of the children it has waited for.
	cpu time.Duration
}

// procs reads every process's parent and CPU time.
func readProcs() map[int]procStat {
	out := map[int]procStat{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range dirs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // ended meanwhile
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		// f[0] is the state (field 3); ppid is field 4, utime..cstime 14-17.
		if len(f) < 15 {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		ppid, _ := strconv.Atoi(f[1])
		var ticks int64
		for _, k := range f[11:15] {
			v, _ := strconv.ParseInt(k, 10, 64)
			ticks += v
		}
		out[pid] = procStat{ppid: ppid, cpu: time.Duration(ticks) * clockTick}
	}
	return out
}

// treeCPU is the CPU time of pid and every process below it, the ended
// ones included (a process's waited-for children are in its cutime and
// cstime; a live one's own time is not yet).
func treeCPU(all map[int]procStat, pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	kids := map[int][]int{}
	for p, st := range all {
		kids[st.ppid] = append(kids[st.ppid], p)
	}
	var sum time.Duration
	stack := []int{pid}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		sum += all[p].cpu
		stack = append(stack, kids[p]...)
	}
	return sum
}

// selfCPU is this process's user and system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var ssPID = regexp.MustCompile(`pid=(\d+)`)

// listener returns the PID of the process listening on addr's TCP port
// (through ss), or 0.
func listener(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	out, err := exec.Command("ss", "-Hltnp", "sport = :"+port).Output()
	if err != nil {
		return 0
	}
	m := ssPID.FindSubmatch(out)
	if m == nil {
		return 0
	}
	pid, _ := strconv.Atoi(string(m[1]))
	return pid
}

// machineBusy is the CPU time every core spent on anything but idling,
// since boot (/proc/stat), the machine's other tenants included.
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += n
	}
	return time.Duration(busy) * clockTick
}

// cpuSample is the CPU time of the benchmark's parts at one moment.
type cpuSample struct {
	parent, machine time.Duration
	sshd, pg        time.Duration
	orchestrators   time.Duration
}

func sampleCPU(sshdPID, pgPID int, children []*child) cpuSample {
	all := readProcs()
	s := cpuSample{parent: selfCPU(), machine: machineBusy(), sshd: treeCPU(all, sshdPID), pg: treeCPU(all, pgPID)}
	for _, c := range children {
		s.orchestrators += treeCPU(all, c.cmd.Process.Pid)
	}
	return s
}

func (s cpuSample) sub(o cpuSample) cpuSample {
	return cpuSample{parent: s.parent - o.parent, machine: s.machine - o.machine, sshd: s.sshd - o.sshd, pg: s.pg - o.pg,
		orchestrators: s.orchestrators - o.orchestrators}
}
