package pgtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr puts the postmaster in a process group of its own, so that
// Kill reaches it whole, and makes the kernel kill it when the test binary
// dies, so a crashed or timed-out test run leaves no server behind (its
// backends exit when they see their postmaster gone).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, f := range stats {
		if ppid, _, ok := stat(f); ok && ppid == pid {
			c, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			out = append(out, c)
		}
	}
	return out
}

// alive reports whether pid runs: it exists and is not a zombie (a killed
// backend whose new parent has not reaped it yet holds nothing).
func alive(pid int) bool {
	_, state, ok := stat("/proc/" + strconv.Itoa(pid) + "/stat")
	return ok && state != "Z"
}

// stat reads a process's parent and state from its /proc stat file, whose
// second field (the command, in parentheses) may hold spaces.
func stat(path string) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "", false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}
