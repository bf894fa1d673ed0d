package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// checkPeer refuses connections from other users. The runtime directory's
// 0700 mode already keeps them out; this holds even if someone loosens it.
func checkPeer(c *net.UnixConn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("can't read the peer's credentials: %v", cerr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("refused a connection from uid %d (only uid %d may connect)", cred.Uid, os.Getuid())
	}
	return nil
}
