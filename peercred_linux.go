// Who is at the other end of a connection, on Linux: the Unix socket's
// peer credentials, and the owner of a loopback TCP peer.

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// procNet is the last read of the socket tables, shared by the connections
// that wait for it. Each read holds a descriptor and costs the kernel a line
// per socket, so a flood of connections each reading for itself would
// exhaust the descriptors the Unix socket needs and keep a browser waiting
// for seconds. A read that began after a connection was accepted names its
// peer, so one read answers every connection accepted before it; the
// tables are dropped when nobody waits, as an idle server holds no copy.
var procNet struct {
	sync.Mutex
	read    time.Time // when the tables' read began
	tables  [2][]byte // /proc/net/tcp, /proc/net/tcp6
	waiting atomic.Int32
}

// peerUID is the uid of the process at the other end of c (SO_PEERCRED).
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

// tcpPeerUID is the uid owning the other end of c, a loopback TCP
// connection: TCP has no SO_PEERCRED, but the kernel's socket tables name
// each socket's owner. A peer cannot hide from them while c is open, so no
// entry found means no uid known.
func tcpPeerUID(c net.Conn) (int, error) {
	peer, _ := c.RemoteAddr().(*net.TCPAddr)
	us, _ := c.LocalAddr().(*net.TCPAddr)
	if peer == nil || us == nil {
		return -1, errors.New("not a TCP connection")
	}
	asked := time.Now()
	procNet.waiting.Add(1)
	procNet.Lock()
	procNet.waiting.Add(-1)
	defer func() {
		if procNet.waiting.Load() == 0 {
			procNet.tables = [2][]byte{}
		}
		procNet.Unlock()
	}()
	if !procNet.read.After(asked) {
		procNet.read = time.Now()
		for i, name := range [...]string{"/proc/net/tcp", "/proc/net/tcp6"} {
			procNet.tables[i], _ = os.ReadFile(name)
		}
	}
	var pat [80]byte
	// An IPv4 peer's socket may be IPv6, its address then v4-mapped; an
	// IPv6 address written for the IPv4 table matches nothing.
	for i, table := range procNet.tables {
		// The line's sl, local and remote address columns, as the kernel
		// writes them: ": %08X:%04X %08X:%04X ".
		p := append(appendProcAddr(append(pat[:0], ": "...), peer, i == 0), ' ')
		if uid, ok := procNetUID(table, append(appendProcAddr(p, us, i == 0), ' ')); ok {
			return int(uid), nil
		}
	}
	return -1, errors.New("the socket tables do not name the peer")
}

// appendProcAddr appends a as /proc/net/tcp (v4) or tcp6 writes it: the
// address's 32-bit words in host byte order, in hex, ':', the port.
func appendProcAddr(b []byte, a *net.TCPAddr, v4 bool) []byte {
	ip := a.IP.To16()
	if v4 {
		ip = a.IP.To4()
	}
	for i := 0; i+4 <= len(ip); i += 4 {
		b = appendHex(b, binary.NativeEndian.Uint32(ip[i:]), 8)
	}
	return appendHex(append(b, ':'), uint32(a.Port), 4)
}

func appendHex(b []byte, v uint32, digits int) []byte {
	for s := 4 * (digits - 1); s >= 0; s -= 4 {
		b = append(b, "0123456789ABCDEF"[v>>s&15])
	}
	return b
}

// procNetUID returns the uid, four columns after pat, on the first line of
// a socket table holding pat. It allocates nothing, and hostile text costs
// it no more than a scan.
func procNetUID(table, pat []byte) (uint32, bool) {
	i := bytes.Index(table, pat)
	if i < 0 {
		return 0, false
	}
	line, _, _ := bytes.Cut(table[i+len(pat):], []byte{'\n'})
	for n := 0; n < 4; n++ {
		_, line, _ = bytes.Cut(bytes.TrimLeft(line, " "), []byte{' '})
	}
	f, _, _ := bytes.Cut(bytes.TrimLeft(line, " "), []byte{' '})
	uid, err := strconv.ParseUint(string(f), 10, 32)
	return uint32(uid), err == nil
}
