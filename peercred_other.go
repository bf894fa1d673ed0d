//go:build !linux

// Who is at the other end of a connection, where the system does not say.

package main

import (
	"errors"
	"net"
)

// peerUID is unknown here; the runtime directory checks keep others out.
func peerUID(c *net.UnixConn) (int, error) {
	return -1, errors.New("peer credentials are not available on this system")
}

// tcpPeerUID is unknown here: any local user may reach the redirect
// listener, as pizauth(1) says.
func tcpPeerUID(c net.Conn) (int, error) {
	return -1, errors.New("the owner of a TCP connection is not known on this system")
}
