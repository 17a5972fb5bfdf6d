//go:build !linux

package testenv

import "syscall"

// DieWithTest has no parent-death signal outside Linux: servers of a
// crashed test run must be stopped by hand there.
func DieWithTest() *syscall.SysProcAttr { return nil }
