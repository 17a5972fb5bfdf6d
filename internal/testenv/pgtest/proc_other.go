//go:build !linux

package pgtest

import "syscall"

// sysProcAttr puts the postmaster in a process group of its own. There is
// no parent-death signal outside Linux: servers of a crashed test run must
// be stopped by hand there.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// childrenOf finds no backends outside Linux: they exit on their own once
// they see their postmaster gone.
func childrenOf(int) []int { return nil }

// alive reports whether pid exists.
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }
