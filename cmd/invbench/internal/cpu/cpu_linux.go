package cpu

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of /proc CPU times on Linux.
const userHZ = 100

// Read reads the tool's CPU time, the server's (pid; 0 if unknown) from
// /proc/PID/stat and the machine's busy time from /proc/stat.
func Read(pid int) Sample {
	s := Sample{at: time.Now(), tool: -1, server: -1, machine: -1}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.tool = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if pid > 0 {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			// Fields after the command name, which ends at the last ')':
			// state is the first, utime the 12th, stime the 13th.
			if i := bytes.LastIndexByte(b, ')'); i >= 0 {
				f := strings.Fields(string(b[i+1:]))
				if len(f) > 12 {
					s.server = ticks(f[11]) + ticks(f[12])
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		// cpu user nice system idle iowait irq softirq steal ...
		f := strings.Fields(line)
		if len(f) > 8 && f[0] == "cpu" {
			s.machine = ticks(f[1]) + ticks(f[2]) + ticks(f[3]) + ticks(f[6]) + ticks(f[7]) + ticks(f[8])
		}
	}
	return s
}

func ticks(s string) time.Duration {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.Duration(n) * time.Second / userHZ
}
