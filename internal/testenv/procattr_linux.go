package testenv

import "syscall"

// DieWithTest is the SysProcAttr of a server process a test starts: the
// kernel kills it when the test binary dies, so a crashed or timed-out run
// leaves no server behind.
func DieWithTest() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
