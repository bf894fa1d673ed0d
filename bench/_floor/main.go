// Command floor is the lower bound `make bench` compares `pizauth show`
// against: a Go program that does nothing but send one show request to a
// running pizauth server and print the reply. bench/latency.sh builds it
// twice: as it is, and with blank imports of every standard package pizauth
// links, so that the second floor pays the same package initialisation.
//
// Keep the request and reply encoding in step with protocol.go.
package main

import (
	"net"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 2 {
		os.Stderr.WriteString("usage: floor <account>\n")
		os.Exit(1)
	}
	conn, err := net.Dial("unix", socketPath())
	if err != nil {
		fail(err)
	}
	if _, err := conn.Write(frame(request(os.Args[1]))); err != nil {
		fail(err)
	}
	reply, err := readFrame(conn)
	if err != nil {
		fail(err)
	}
	fields := decodeFields(reply)
	if len(fields) != 2 || string(fields[0]) != "ok" {
		os.Stderr.WriteString("floor: no token: " + string(reply) + "\n")
		os.Exit(1)
	}
	os.Stdout.Write(append(fields[1], '\n'))
}

// request is the payload of `show <account>`: the fields "show", "" (no
// flags) and the account, each a uvarint length and its bytes.
func request(account string) []byte {
	var b []byte
	for _, f := range []string{"show", "", account} {
		b = appendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// decodeFields splits a reply into its fields; it returns nil if the reply
// is malformed.
func decodeFields(b []byte) [][]byte {
	var fields [][]byte
	for len(b) > 0 {
		var n uint64
		var shift uint
		i := 0
		for ; i < len(b) && i < 10; i++ {
			n |= uint64(b[i]&0x7f) << shift
			shift += 7
			if b[i] < 0x80 {
				break
			}
		}
		if i >= len(b) || i == 10 || n > uint64(len(b)-i-1) {
			return nil
		}
		b = b[i+1:]
		fields = append(fields, b[:n])
		b = b[n:]
	}
	return fields
}

// frame prefixes payload with its length as 4 big-endian bytes.
func frame(payload []byte) []byte {
	n := len(payload)
	return append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, payload...)
}

func readFrame(c net.Conn) ([]byte, error) {
	var hdr [4]byte
	if err := readFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := int(hdr[0])<<24 | int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	buf := make([]byte, n)
	return buf, readFull(c, buf)
}

func readFull(c net.Conn, b []byte) error {
	for len(b) > 0 {
		n, err := c.Read(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// socketPath follows pizauth's rule: $XDG_RUNTIME_DIR/pizauth, else
// ${TMPDIR:-/tmp}/runtime-$USER/pizauth.
func socketPath() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "pizauth", "pizauth.sock")
	}
	tmp := os.Getenv("TMPDIR")
	if tmp == "" {
		tmp = "/tmp"
	}
	return filepath.Join(tmp, "runtime-"+os.Getenv("USER"), "pizauth", "pizauth.sock")
}

func fail(err error) {
	os.Stderr.WriteString("floor: " + err.Error() + "\n")
	os.Exit(1)
}
