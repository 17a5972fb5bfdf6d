//go:build !linux

package natstest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: servers of a
// crashed test run must be stopped by hand there.
func sysProcAttr() *syscall.SysProcAttr { return nil }
