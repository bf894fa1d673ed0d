package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("ab"), 100<<10)} {
		var buf bytes.Buffer
		if err := writeFrame(&buf, payload); err != nil {
			t.Fatal(err)
		}
		got, err := readFrame(&buf, maxFrame)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("frame of %d bytes came back as %d bytes", len(payload), len(got))
		}
	}
}

func TestFrameErrors(t *testing.T) {
	huge := make([]byte, 4)
	binary.BigEndian.PutUint32(huge, maxFrame+1)
	short := make([]byte, 4)
	binary.BigEndian.PutUint32(short, 10)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"oversized length", string(huge), "message too large"},
		{"truncated header", "\x00\x00", "truncated frame header"},
		{"truncated body", string(short) + "abc", "truncated frame"},
	} {
		_, err := readFrame(strings.NewReader(tc.in), maxFrame)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	// A claimed large frame that never arrives costs no large allocation
	// and reports truncation.
	big := make([]byte, 4)
	binary.BigEndian.PutUint32(big, 50<<20)
	if _, err := readFrame(bytes.NewReader(append(big, "abc"...)), maxFrame); err == nil {
		t.Fatal("truncated large frame accepted")
	}
	if err := writeFrame(&bytes.Buffer{}, make([]byte, maxFrame+1)); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("oversized write: %v", err)
	}
}

func TestRequestDecoding(t *testing.T) {
	req, err := decodeRequest(encodeFields([]byte("show"), []byte("u"), []byte("work")))
	if err != nil || req.cmd != "show" || string(req.args[0]) != "u" || string(req.args[1]) != "work" {
		t.Fatalf("got %+v, %v", req, err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty request"},
		{"unknown", encodeFields([]byte("frobnicate")), `unknown command "frobnicate"`},
		{"too few args", encodeFields([]byte("show"), []byte("")), "malformed show request: 1 arguments, expected 2"},
		{"too many args", encodeFields([]byte("reload"), []byte("x")), "malformed reload request"},
		{"bad varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "bad field length"},
		{"field past end", []byte{10, 'a'}, "field longer than message"},
		{"too many fields", encodeFields(make([][]byte, maxFields+1)...), "too many fields"},
	} {
		_, err := decodeRequest(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestResponseDecoding(t *testing.T) {
	vals, err := decodeResponse(okResponse([]byte("tok")))
	if err != nil || len(vals) != 1 || string(vals[0]) != "tok" {
		t.Fatalf("ok response: %q %v", vals, err)
	}
	_, err = decodeResponse(errResponse("No account 'x'"))
	var se serverError
	if !errors.As(err, &se) || err.Error() != "No account 'x'" {
		t.Fatalf("err response: %v", err)
	}
	for _, in := range [][]byte{nil, encodeFields([]byte("maybe")), encodeFields([]byte("err"))} {
		if _, err := decodeResponse(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// FuzzFrame feeds arbitrary bytes to the server's frame and request
// decoders: they must never panic, and whatever they accept must encode
// back to the same request.
func FuzzFrame(f *testing.F) {
	var buf bytes.Buffer
	writeFrame(&buf, encodeFields([]byte("show"), []byte(""), []byte("work")))
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 3, 1, 'x', 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := readFrame(bytes.NewReader(in), 1<<20)
		if err != nil {
			return
		}
		req, err := decodeRequest(b)
		if err != nil {
			return
		}
		fields := append([][]byte{[]byte(req.cmd)}, req.args...)
		again, err := decodeRequest(encodeFields(fields...))
		if err != nil || again.cmd != req.cmd || len(again.args) != len(req.args) {
			t.Fatalf("re-encoded request differs: %v", err)
		}
	})
}

// A frame that claims the 64 MiB maximum but carries a few bytes costs
// what was read, not what was claimed: a client that lies about its length
// cannot make the server allocate for it.
func TestReadFrameAllocatesOnlyWhatArrives(t *testing.T) {
	hdr := []byte{0x04, 0x00, 0x00, 0x00} // 64 MiB
	in := append(hdr, bytes.Repeat([]byte("x"), 100)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := readFrame(bytes.NewReader(in), maxFrame)
	runtime.ReadMemStats(&after)
	if err == nil || err.Error() != "truncated frame" {
		t.Fatalf("short frame: %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Errorf("reading 104 bytes of a frame claiming 64 MiB allocated %d bytes", got)
	}
}
