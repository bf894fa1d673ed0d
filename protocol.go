package main

// The client–server protocol, defined once for both sides.
//
// One request and one response go over each connection, each a frame: a
// 4-byte big-endian length n (at most maxFrame, checked before anything is
// allocated), then n bytes of payload: fields, each a uvarint length and
// opaque bytes, so a dump needs no escaping and `show` no JSON.
//
//	request:  cmd [arg ...]
//	response: "ok" [value ...]   or   "err" message
//
// Requests (cmd, then arguments):
//
//	show     flags account    flags is "" or "u" (omit the URL)
//	refresh  flags account
//	status   format           format is "" (text) or "j" (JSON)
//	info                      reply: http port, https port, https
//	                          fingerprint, configuration file path,
//	                          https public key
//	restore  dump             reply: what was restored, for the user
//	reload
//	revoke   account
//	dump                      reply: the sealed dump (dump.go)
//	shutdown
//
// A request with an unknown cmd or the wrong arguments gets an "err".

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	// maxFrame bounds every frame: the largest dump, and its envelope.
	maxFrame = 64<<20 + 64
	// maxFields bounds the number of fields in a payload.
	maxFields = 8
)

var errFrameTooLarge = errors.New("message too large")

// writeFrame writes payload as one frame.
func writeFrame(w io.Writer, payload []byte) error {
	if len(payload) > maxFrame {
		return errFrameTooLarge
	}
	buf := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[4:], payload)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame, growing its buffer as bytes really arrive: a
// peer that claims 64 MiB and sends nothing costs nothing.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, errors.New("truncated frame header")
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w (%d bytes; at most %d)", errFrameTooLarge, n, max)
	}
	if n <= 64<<10 {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, errors.New("truncated frame")
		}
		return buf, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if len(buf) != int(n) {
		return nil, errors.New("truncated frame")
	}
	return buf, nil
}

// encodeFields builds a payload from fields.
func encodeFields(fields ...[]byte) []byte {
	n := 0
	for _, f := range fields {
		n += binary.MaxVarintLen64 + len(f)
	}
	buf := make([]byte, 0, n)
	for _, f := range fields {
		buf = binary.AppendUvarint(buf, uint64(len(f)))
		buf = append(buf, f...)
	}
	return buf
}

// decodeFields splits a payload into its fields. The returned slices alias b.
func decodeFields(b []byte) ([][]byte, error) {
	var fields [][]byte
	for len(b) > 0 {
		if len(fields) == maxFields {
			return nil, errors.New("malformed message: too many fields")
		}
		n, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, errors.New("malformed message: bad field length")
		}
		b = b[k:]
		if n > uint64(len(b)) {
			return nil, errors.New("malformed message: field longer than message")
		}
		fields = append(fields, b[:n])
		b = b[n:]
	}
	return fields, nil
}

// request is a decoded client request.
type request struct {
	cmd  string
	args [][]byte
}

// argCount says how many arguments cmd takes, and whether cmd exists (a
// switch: a map would be built at every start, `pizauth show`'s included).
func argCount(cmd string) (int, bool) {
	switch cmd {
	case "info", "reload", "dump", "shutdown":
		return 0, true
	case "status", "revoke", "restore":
		return 1, true
	case "show", "refresh":
		return 2, true
	}
	return 0, false
}

// decodeRequest parses and checks a request payload.
func decodeRequest(b []byte) (request, error) {
	fields, err := decodeFields(b)
	if err != nil {
		return request{}, err
	}
	if len(fields) == 0 {
		return request{}, errors.New("malformed message: empty request")
	}
	cmd := string(fields[0])
	want, ok := argCount(cmd)
	if !ok {
		return request{}, fmt.Errorf("unknown command %q", cut(cmd, 32))
	}
	if len(fields)-1 != want {
		return request{}, fmt.Errorf("malformed %s request: %d arguments, expected %d", cmd, len(fields)-1, want)
	}
	return request{cmd: cmd, args: fields[1:]}, nil
}

// okResponse and errResponse build response payloads.
func okResponse(values ...[]byte) []byte {
	return encodeFields(append([][]byte{[]byte("ok")}, values...)...)
}

func errResponse(msg string) []byte {
	return encodeFields([]byte("err"), []byte(msg))
}

// decodeResponse returns an "ok" response's values, or an "err" as error.
func decodeResponse(b []byte) ([][]byte, error) {
	fields, err := decodeFields(b)
	if err != nil {
		return nil, err
	}
	if len(fields) == 0 {
		return nil, errors.New("malformed message: empty response")
	}
	switch string(fields[0]) {
	case "ok":
		return fields[1:], nil
	case "err":
		if len(fields) != 2 {
			return nil, errors.New("malformed message: bad error response")
		}
		return nil, serverError(fields[1])
	}
	return nil, errors.New("malformed message: unknown response")
}

// serverError is an error reported by the server, shown to the user as is.
type serverError string

func (e serverError) Error() string { return string(e) }
