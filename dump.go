package main

// Dump format (`pizauth dump` writes it, `pizauth restore` reads it).
//
// Outer layout, all of it produced by encodeDump and checked by decodeDump:
//
//	offset  size  content
//	0       8     magic "PIZAUTHD"
//	8       1     format version, currently 1
//	9       12    nonce, fresh from crypto/rand for every dump
//	21      n+16  AES-256-GCM ciphertext of the payload plus its 16-byte tag;
//	              the 9 bytes of magic and version are the additional
//	              authenticated data, so they cannot be altered either
//
// The key, dumpKey, is compiled into every pizauth: this is NOT encryption.
// The seal keeps tokens out of a casual `grep`, and makes a damaged or
// foreign file certain to be refused rather than half-read. Users must
// encrypt stored dumps themselves (`pizauth dump | age -r ...`).
//
// Payload (the plaintext). Integers are big-endian; every length is a u32
// byte count; a time is an i64 count of Unix nanoseconds (wall clock):
//
//	count     u32   number of entries that follow
//	then, per entry:
//	name      u32 length + bytes   account name, valid UTF-8, unique in the dump
//	securekey u32 length + bytes   opaque (*Account).secureKey(); may be empty
//	flags     u8    bit 0: Active; bit 1: Obtained is set; bit 2: Expiry is
//	                set; other bits must be 0. Bits 1 and 2 only with bit 0.
//	and only when Active:
//	access    u32 length + bytes   access token, never empty
//	refresh   u32 length + bytes   refresh token; length 0 means none
//	obtained  i64                  must be 0 when flag bit 1 is clear
//	expiry    i64                  must be 0 when flag bit 2 is clear
//
// The payload ends exactly after the last entry. encodeDump refuses what
// decodeDump would reject, so a dump written can always be restored, and
// each state has one encoding. A format change must bump dumpVersion, so
// that older binaries ask the user to upgrade rather than misread it.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// dumpEntry is one account in a dump.
type dumpEntry struct {
	Name         string
	SecureKey    []byte // (*Account).secureKey(), compared byte for byte on restore
	Active       bool   // only Active accounts carry tokens
	AccessToken  string
	RefreshToken string    // "" when none
	Obtained     time.Time // wall clock
	Expiry       time.Time // wall clock
}

// maxDumpSize is the largest dump accepted (also the protocol frame cap).
const maxDumpSize = 64 << 20

const (
	dumpMagic     = "PIZAUTHD"
	dumpVersion   = 1
	dumpNonceSize = 12
	dumpTagSize   = 16
	dumpAADSize   = len(dumpMagic) + 1
	dumpHeaderLen = dumpAADSize + dumpNonceSize
	dumpMinSize   = dumpHeaderLen + dumpTagSize

	dumpFlagActive   = 1 << 0
	dumpFlagObtained = 1 << 1
	dumpFlagExpiry   = 1 << 2
	dumpFlagsKnown   = dumpFlagActive | dumpFlagObtained | dumpFlagExpiry

	// The smallest possible encoded entry: two empty lengths and the flags.
	dumpMinEntrySize = 4 + 4 + 1
)

// dumpKey only obfuscates dumps. Changing it breaks every existing dump.
var dumpKey = [32]byte{
	0x01, 0xa2, 0x1d, 0x14, 0xf8, 0xaf, 0x3b, 0x8a,
	0xd8, 0x00, 0xd0, 0xfb, 0x46, 0x34, 0xc1, 0x79,
	0x3e, 0xa4, 0xf6, 0x89, 0x9e, 0xdd, 0x29, 0x72,
	0x19, 0x9d, 0xda, 0x51, 0x05, 0x35, 0xd8, 0x5d,
}

// Times representable as int64 Unix nanoseconds (years 1677 to 2262).
var (
	dumpMinTime = time.Unix(0, math.MinInt64)
	dumpMaxTime = time.Unix(0, math.MaxInt64)
)

var (
	errDumpEmpty    = errors.New("dump is empty: expected the output of `pizauth dump`")
	errNotDump      = errors.New("not a pizauth dump")
	errDumpAuthFail = errors.New("dump is corrupted or was not made by pizauth: authentication failed")
)

func dumpAEAD() cipher.AEAD {
	block, err := aes.NewCipher(dumpKey[:])
	if err != nil {
		panic("dump: " + err.Error()) // the key length is a compile-time constant
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("dump: " + err.Error())
	}
	return aead
}

// encodeDump seals entries into a dump, or fails, if an entry breaks a rule
// of the format or the dump would exceed maxDumpSize, with a message that
// names the account but never contains a token.
func encodeDump(entries []dumpEntry) ([]byte, error) {
	size := 4
	seen := make(map[string]struct{}, len(entries))
	for i := range entries {
		e := &entries[i]
		if err := checkDumpEntry(e); err != nil {
			return nil, fmt.Errorf("cannot dump account %q: %v", e.Name, err)
		}
		if _, dup := seen[e.Name]; dup {
			return nil, fmt.Errorf("cannot dump: account %q appears twice", e.Name)
		}
		seen[e.Name] = struct{}{}
		// Each field is checked before adding, so size cannot overflow.
		for _, n := range [...]int{len(e.Name), len(e.SecureKey), len(e.AccessToken), len(e.RefreshToken)} {
			if n > maxDumpSize {
				return nil, dumpTooLargeToWrite(n)
			}
		}
		size += dumpMinEntrySize + len(e.Name) + len(e.SecureKey)
		if e.Active {
			size += 4 + len(e.AccessToken) + 4 + len(e.RefreshToken) + 8 + 8
		}
		if size > maxDumpSize {
			return nil, dumpTooLargeToWrite(size)
		}
	}
	total := dumpHeaderLen + size + dumpTagSize
	if total > maxDumpSize {
		return nil, dumpTooLargeToWrite(total)
	}

	// One buffer holds header, payload and tag; the payload is sealed in
	// place so no plaintext copy of the tokens is left behind.
	buf := make([]byte, dumpHeaderLen, total)
	copy(buf, dumpMagic)
	buf[len(dumpMagic)] = dumpVersion
	nonce := buf[dumpAADSize:dumpHeaderLen]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("cannot dump: no randomness for the nonce: %v", err)
	}
	p := buf[dumpHeaderLen:dumpHeaderLen]
	p = binary.BigEndian.AppendUint32(p, uint32(len(entries)))
	for i := range entries {
		e := &entries[i]
		p = appendDumpBytes(p, e.Name)
		p = appendDumpBytes(p, e.SecureKey)
		var flags byte
		if e.Active {
			flags |= dumpFlagActive
			if !e.Obtained.IsZero() {
				flags |= dumpFlagObtained
			}
			if !e.Expiry.IsZero() {
				flags |= dumpFlagExpiry
			}
		}
		p = append(p, flags)
		if e.Active {
			p = appendDumpBytes(p, e.AccessToken)
			p = appendDumpBytes(p, e.RefreshToken)
			p = binary.BigEndian.AppendUint64(p, uint64(dumpUnixNano(e.Obtained)))
			p = binary.BigEndian.AppendUint64(p, uint64(dumpUnixNano(e.Expiry)))
		}
	}
	if len(p) != size {
		panic(fmt.Sprintf("dump: payload is %d bytes, computed %d", len(p), size))
	}
	return dumpAEAD().Seal(buf[:dumpHeaderLen], nonce, p, buf[:dumpAADSize]), nil
}

func dumpTooLargeToWrite(n int) error {
	return fmt.Errorf("cannot dump: the state is too large (at least %d bytes; a dump holds at most 64 MiB)", n)
}

// checkDumpEntry is, for the encoder, decodeDump's per-entry rules.
func checkDumpEntry(e *dumpEntry) error {
	if !utf8.ValidString(e.Name) {
		return errors.New("account name is not valid UTF-8")
	}
	if !e.Active {
		if e.AccessToken != "" || e.RefreshToken != "" || !e.Obtained.IsZero() || !e.Expiry.IsZero() {
			return errors.New("inactive account carries token data")
		}
		return nil
	}
	if e.AccessToken == "" {
		return errors.New("active account has no access token")
	}
	if !vschar(e.AccessToken) || !vschar(e.RefreshToken) {
		return errors.New("a token contains characters that RFC 6749 forbids in tokens")
	}
	for _, t := range [...]time.Time{e.Obtained, e.Expiry} {
		if !t.IsZero() && (t.Before(dumpMinTime) || t.After(dumpMaxTime)) {
			return fmt.Errorf("time %s is outside the range a dump can hold (1677 to 2262)", t.Format(time.RFC3339))
		}
	}
	return nil
}

func appendDumpBytes[T string | []byte](p []byte, s T) []byte {
	p = binary.BigEndian.AppendUint32(p, uint32(len(s)))
	return append(p, s...)
}

func dumpUnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// decodeDump opens and fully validates a dump; on any error it returns no
// entries, and a one-line message without token material. Times are local,
// without a monotonic reading.
func decodeDump(b []byte) ([]dumpEntry, error) {
	// Checked first, so an oversized input costs nothing to reject.
	if len(b) > maxDumpSize {
		return nil, fmt.Errorf("dump is too large (%d bytes; at most 64 MiB)", len(b))
	}
	if len(b) == 0 {
		return nil, errDumpEmpty
	}
	if len(b) < len(dumpMagic) {
		if bytes.HasPrefix([]byte(dumpMagic), b) {
			return nil, dumpTruncated(len(b))
		}
		return nil, errNotDump
	}
	if string(b[:len(dumpMagic)]) != dumpMagic {
		return nil, errNotDump
	}
	if len(b) == len(dumpMagic) {
		return nil, dumpTruncated(len(b))
	}
	switch v := b[len(dumpMagic)]; {
	case v > dumpVersion:
		return nil, fmt.Errorf("dump format version %d is newer than this pizauth understands (%d): upgrade pizauth", v, dumpVersion)
	case v < dumpVersion:
		return nil, fmt.Errorf("dump is corrupted: format version %d does not exist", v)
	}
	if len(b) < dumpMinSize {
		return nil, dumpTruncated(len(b))
	}
	// Not in place: that would scribble over the caller's bytes.
	plain, err := dumpAEAD().Open(nil, b[dumpAADSize:dumpHeaderLen], b[dumpHeaderLen:], b[:dumpAADSize])
	if err != nil {
		return nil, errDumpAuthFail
	}
	entries, err := parseDumpPayload(plain)
	// The entries hold their own copies; don't leave tokens lying around.
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("dump is corrupted: %v", err)
	}
	return entries, nil
}

func dumpTruncated(n int) error {
	return fmt.Errorf("dump is truncated (%d bytes; a pizauth dump is at least %d bytes)", n, dumpMinSize)
}

// dumpReader walks a payload, checking every read against what remains.
type dumpReader struct {
	p   []byte
	err error
}

func (r *dumpReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

// take returns the next n bytes, or nil after recording, with what, where
// the payload ended.
func (r *dumpReader) take(n uint64, ended, what string) []byte {
	if r.err == nil && n > uint64(len(r.p)) {
		r.fail(ended, what)
	}
	if r.err != nil {
		return nil
	}
	b := r.p[:n:n]
	r.p = r.p[n:]
	return b
}

func (r *dumpReader) u32(what string) uint32 {
	if b := r.take(4, "ends in the length of the %s", what); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *dumpReader) field(what string) []byte {
	n := r.u32(what)
	if r.err == nil && uint64(n) > uint64(len(r.p)) {
		r.fail("%s claims %d bytes but only %d remain", what, n, len(r.p))
	}
	return r.take(uint64(n), "", what)
}

func (r *dumpReader) byte1(what string) byte {
	if b := r.take(1, "ends before the %s", what); b != nil {
		return b[0]
	}
	return 0
}

func (r *dumpReader) i64(what string) int64 {
	if b := r.take(8, "ends in the %s", what); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

// parseDumpPayload decodes an authenticated payload. Fields are copied out,
// so the result does not alias p.
func parseDumpPayload(p []byte) ([]dumpEntry, error) {
	r := dumpReader{p: p}
	count := r.u32("entry count")
	if r.err != nil {
		return nil, r.err
	}
	if uint64(count) > uint64(len(r.p)/dumpMinEntrySize) {
		return nil, fmt.Errorf("claims %d entries but only %d bytes follow", count, len(r.p))
	}
	// The count is not trusted for sizing: a forged header claiming half
	// a million entries must cost no more than the entries really read.
	var entries []dumpEntry
	seen := make(map[string]struct{})
	for i := 0; i < int(count); i++ {
		entries = append(entries, dumpEntry{})
		e := &entries[i]
		name := r.field("account name")
		key := r.field("security key")
		flags := r.byte1("flags")
		if r.err != nil {
			return nil, fmt.Errorf("entry %d of %d: %v", i+1, count, r.err)
		}
		if !utf8.Valid(name) {
			return nil, fmt.Errorf("entry %d of %d: account name is not valid UTF-8", i+1, count)
		}
		e.Name = string(name)
		if _, dup := seen[e.Name]; dup {
			return nil, fmt.Errorf("account %q appears twice", e.Name)
		}
		seen[e.Name] = struct{}{}
		if len(key) > 0 {
			e.SecureKey = bytes.Clone(key)
		}
		if flags&^dumpFlagsKnown != 0 {
			return nil, fmt.Errorf("account %q: unknown flags %#02x", e.Name, flags)
		}
		if flags&dumpFlagActive == 0 {
			if flags != 0 {
				return nil, fmt.Errorf("account %q: inactive but has token time flags", e.Name)
			}
			continue
		}
		e.Active = true
		access := r.field("access token")
		refresh := r.field("refresh token")
		obtained := r.i64("time obtained")
		expiry := r.i64("expiry time")
		if r.err != nil {
			return nil, fmt.Errorf("account %q: %v", e.Name, r.err)
		}
		if len(access) == 0 {
			return nil, fmt.Errorf("account %q: active but has no access token", e.Name)
		}
		// Anyone can forge a dump: a CR LF in a token would reach a mail
		// program's protocol through `pizauth show`.
		if !vschar(access) || !vschar(refresh) {
			return nil, fmt.Errorf("account %q: a token contains characters that RFC 6749 forbids in tokens", e.Name)
		}
		e.AccessToken = string(access)
		e.RefreshToken = string(refresh)
		var ok1, ok2 bool
		e.Obtained, ok1 = dumpTime(obtained, flags&dumpFlagObtained != 0)
		e.Expiry, ok2 = dumpTime(expiry, flags&dumpFlagExpiry != 0)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("account %q: a time marked unset is not zero", e.Name)
		}
	}
	if len(r.p) != 0 {
		return nil, fmt.Errorf("%d unexpected bytes after the last entry", len(r.p))
	}
	return entries, nil
}

// dumpTime turns a stored time back into a time.Time; ok is false for a
// non-canonical unset time.
func dumpTime(ns int64, set bool) (t time.Time, ok bool) {
	if !set {
		return time.Time{}, ns == 0
	}
	return time.Unix(0, ns), true
}
