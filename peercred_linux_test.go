package main

import (
	"encoding/binary"
	"net"
	"os"
	"strings"
	"testing"
)

// A connection of the test's own finds the test's uid, over IPv4 and IPv6.
func TestTCPPeerUIDOwnConnection(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v", addr, err)
			continue
		}
		defer l.Close()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if uid, err := tcpPeerUID(s); err != nil || uid != os.Getuid() {
			t.Errorf("%s: peer uid %d, %v; want %d", addr, uid, err, os.Getuid())
		}
	}
}

// The addresses are written as the kernel writes them, in host byte order.
func TestAppendProcAddr(t *testing.T) {
	le := binary.NativeEndian.Uint16([]byte{1, 0}) == 1
	for _, c := range []struct {
		ip     string
		v4     bool
		le, be string
	}{
		{"127.0.0.1", true, "0100007F:0CEA", "7F000001:0CEA"},
		{"127.0.0.1", false, "0000000000000000FFFF00000100007F:0CEA", "00000000000000000000FFFF7F000001:0CEA"},
		{"::1", false, "00000000000000000000000001000000:0CEA", "00000000000000000000000000000001:0CEA"},
		{"::1", true, ":0CEA", ":0CEA"}, // matches nothing in the IPv4 table
	} {
		want := c.be
		if le {
			want = c.le
		}
		if got := string(appendProcAddr(nil, &net.TCPAddr{IP: net.ParseIP(c.ip), Port: 3306}, c.v4)); got != want {
			t.Errorf("%s (v4 %v): %q, want %q", c.ip, c.v4, got, want)
		}
	}
}

const procNetSample = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000 65534        0 5678 1 0000000000000000 20 4 30 10 -1
   2: 0000000000000000FFFF00000100007F:C351 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 91 1
`

// procNetUID finds the uid of the line with the addresses asked for, and
// nothing in hostile text: long lines, missing columns, huge or negative
// numbers, no final newline.
func TestProcNetUID(t *testing.T) {
	long := strings.Repeat("A", 1<<20)
	for _, c := range []struct {
		table, pat string
		uid        uint32
		ok         bool
	}{
		{procNetSample, ": 0100007F:C350 0100007F:1F90 ", 65534, true},
		{procNetSample, ": 0000000000000000FFFF00000100007F:C351 0000000000000000FFFF00000100007F:1F90 ", 1000, true},
		{procNetSample, ": 0100007F:1F90 00000000:0000 ", 0, true},
		{procNetSample, ": 0100007F:C351 0100007F:1F90 ", 0, false},
		{"", ": 0100007F:C350 0100007F:1F90 ", 0, false},
		{long, ": " + long[:100] + " ", 0, false},
		{"   1: 0100007F:C350 0100007F:1F90 " + long, ": 0100007F:C350 0100007F:1F90 ", 0, false},
		{"   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000\n   2: 1 2 3 4 5 6 7 8\n", ": 0100007F:C350 0100007F:1F90 ", 0, false},
		{"   1: 0100007F:C350 0100007F:1F90 01 0:0 0:0 0 99999999999999999999999 0", ": 0100007F:C350 0100007F:1F90 ", 0, false},
		{"   1: 0100007F:C350 0100007F:1F90 01 0:0 0:0 0 4294967296 0", ": 0100007F:C350 0100007F:1F90 ", 0, false},
		{"   1: 0100007F:C350 0100007F:1F90 01 0:0 0:0 0 -1 0", ": 0100007F:C350 0100007F:1F90 ", 0, false},
		{"   1: 0100007F:C350 0100007F:1F90 01 0:0 0:0 0 12a 0", ": 0100007F:C350 0100007F:1F90 ", 0, false},
		{"   1: 0100007F:C350 0100007F:1F90 01 0:0 0:0 0 4294967295", ": 0100007F:C350 0100007F:1F90 ", 4294967295, true},
		{"   1: 0100007F:C350 0100007F:1F90 01 0:0 0:0 0\n 7 0", ": 0100007F:C350 0100007F:1F90 ", 0, false},
	} {
		uid, ok := procNetUID([]byte(c.table), []byte(c.pat))
		if ok != c.ok || ok && uid != c.uid {
			t.Errorf("table %q, addresses %q: %d, %v; want %d, %v", cut(c.table, 80), cut(c.pat, 80), uid, ok, c.uid, c.ok)
		}
	}
	table, pat := []byte(procNetSample), []byte(": 0100007F:C350 0100007F:1F90 ")
	if n := testing.AllocsPerRun(100, func() { procNetUID(table, pat) }); n != 0 {
		t.Errorf("procNetUID allocates %v times a call", n)
	}
}

func FuzzProcNetUID(f *testing.F) {
	f.Add([]byte(procNetSample), []byte(": 0100007F:C350 0100007F:1F90 "))
	f.Add([]byte("   1: 0100007F:C350 0100007F:1F90 01 0:0 0:0 0 99999999999999999999 0"), []byte(": 0100007F:C350 0100007F:1F90 "))
	f.Add([]byte(": : : : : : :"), []byte(": "))
	f.Fuzz(func(t *testing.T, table, pat []byte) {
		procNetUID(table, pat)
	})
}
