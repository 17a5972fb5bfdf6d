package server

import "syscall"

// procAttr makes the kernel stop the server if the tool dies without
// stopping it (killed, crashed), so no server outlives a run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
