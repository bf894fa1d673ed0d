//go:build !linux

package main

import (
	"errors"
	"net"
)

// peerUID is unknown where the standard library offers no portable way to
// read a Unix peer's uid; the runtime directory checks (0700, owned by the
// user, as is the socket) are then what keeps other users out.
func peerUID(c *net.UnixConn) (int, error) {
	return -1, errors.New("peer credentials are not available on this system")
}
