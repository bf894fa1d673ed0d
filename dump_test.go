package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Distinctive secrets, so a leak into output or an error is easy to spot.
const (
	testAccess  = "ya29.ACCESS-TOKEN-must-never-leak-0123456789"
	testRefresh = "1//REFRESH-TOKEN-must-never-leak-9876543210"
)

func sampleDumpEntries() []dumpEntry {
	obtained := time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC)
	return []dumpEntry{
		{
			Name:         "work",
			SecureKey:    []byte("auth_uri=https://example.com/auth\x00client_id=abc"),
			Active:       true,
			AccessToken:  testAccess,
			RefreshToken: testRefresh,
			Obtained:     obtained,
			Expiry:       obtained.Add(time.Hour),
		},
		{
			Name:        "no-refresh",
			SecureKey:   []byte{0, 1, 2, 0xff},
			Active:      true,
			AccessToken: "access-only",
			Obtained:    time.Unix(0, 0), // the epoch is a real time, not "unset"
			Expiry:      time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC),
		},
		{Name: "inactive", SecureKey: []byte("k")},
		{
			Name:        "zero-times",
			SecureKey:   []byte("z"),
			Active:      true,
			AccessToken: "t",
		},
		{
			Name:        "courriel ✉ 郵便 🦀",
			Active:      true,
			AccessToken: "unicode-account-token",
			Obtained:    time.Date(1700, 1, 1, 0, 0, 0, 1, time.FixedZone("X", 3600)),
			Expiry:      time.Date(1700, 1, 1, 0, 0, 0, 2, time.UTC),
		},
		{Name: "empty-key-inactive"},
	}
}

// entriesEqual compares as restore would: times by instant, keys by bytes.
func entriesEqual(a, b []dumpEntry) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d entries, want %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		switch {
		case x.Name != y.Name:
			return fmt.Errorf("entry %d: name %q, want %q", i, x.Name, y.Name)
		case !bytes.Equal(x.SecureKey, y.SecureKey):
			return fmt.Errorf("entry %d: secure key %x, want %x", i, x.SecureKey, y.SecureKey)
		case x.Active != y.Active:
			return fmt.Errorf("entry %d: active %v, want %v", i, x.Active, y.Active)
		case x.AccessToken != y.AccessToken:
			return fmt.Errorf("entry %d: access token differs", i)
		case x.RefreshToken != y.RefreshToken:
			return fmt.Errorf("entry %d: refresh token differs", i)
		case x.Obtained.IsZero() != y.Obtained.IsZero() || !x.Obtained.Equal(y.Obtained):
			return fmt.Errorf("entry %d: obtained %v, want %v", i, x.Obtained, y.Obtained)
		case x.Expiry.IsZero() != y.Expiry.IsZero() || !x.Expiry.Equal(y.Expiry):
			return fmt.Errorf("entry %d: expiry %v, want %v", i, x.Expiry, y.Expiry)
		}
	}
	return nil
}

func mustEncodeDump(t testing.TB, entries []dumpEntry) []byte {
	t.Helper()
	b, err := encodeDump(entries)
	if err != nil {
		t.Fatalf("encodeDump: %v", err)
	}
	return b
}

// sealTestPayload wraps an arbitrary payload exactly as encodeDump would,
// to reach the checks that sit behind authentication.
func sealTestPayload(payload []byte) []byte {
	out := append([]byte(dumpMagic), dumpVersion)
	nonce := make([]byte, dumpNonceSize)
	rand.Read(nonce)
	out = append(out, nonce...)
	return dumpAEAD().Seal(out, nonce, payload, out[:dumpAADSize])
}

// openTestDump returns the payload of a valid dump.
func openTestDump(t testing.TB, b []byte) []byte {
	t.Helper()
	p, err := dumpAEAD().Open(nil, b[dumpAADSize:dumpHeaderLen], b[dumpHeaderLen:], b[:dumpAADSize])
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return p
}

// payloadBuilder writes payloads by hand, valid or not.
type payloadBuilder struct{ b []byte }

func (p *payloadBuilder) u32(v uint32) *payloadBuilder {
	p.b = binary.BigEndian.AppendUint32(p.b, v)
	return p
}
func (p *payloadBuilder) str(s string) *payloadBuilder {
	p.u32(uint32(len(s)))
	p.b = append(p.b, s...)
	return p
}
func (p *payloadBuilder) u8(v byte) *payloadBuilder { p.b = append(p.b, v); return p }
func (p *payloadBuilder) i64(v int64) *payloadBuilder {
	p.b = binary.BigEndian.AppendUint64(p.b, uint64(v))
	return p
}
func (p *payloadBuilder) raw(s string) *payloadBuilder { p.b = append(p.b, s...); return p }

func checkDumpErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want error %q", want)
	}
	msg := err.Error()
	if msg != want {
		t.Errorf("error %q\nwant     %q", msg, want)
	}
	if strings.ContainsAny(msg, "\n\r") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, secret := range []string{testAccess, testRefresh, "SECRET"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error leaks a token: %q", msg)
		}
	}
}

func TestDumpRoundTrip(t *testing.T) {
	for _, entries := range [][]dumpEntry{sampleDumpEntries(), {}, sampleDumpEntries()[:1]} {
		b := mustEncodeDump(t, entries)
		got, err := decodeDump(b)
		if err != nil {
			t.Fatalf("decodeDump: %v", err)
		}
		if err := entriesEqual(got, entries); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDumpDecodedTimesAreWallClock(t *testing.T) {
	now := time.Now() // carries a monotonic reading
	e := []dumpEntry{{Name: "a", Active: true, AccessToken: "x", Obtained: now, Expiry: now.Add(time.Hour)}}
	got, err := decodeDump(mustEncodeDump(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if !got[0].Obtained.Equal(now) || got[0].Obtained != got[0].Obtained.Round(0) {
		t.Errorf("obtained %v: want %v without a monotonic reading", got[0].Obtained, now)
	}
}

func TestDumpDecodeDoesNotAliasOrModifyInput(t *testing.T) {
	b := mustEncodeDump(t, sampleDumpEntries())
	orig := bytes.Clone(b)
	got, err := decodeDump(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, orig) {
		t.Fatal("decodeDump modified its input")
	}
	clear(b)
	if err := entriesEqual(got, sampleDumpEntries()); err != nil {
		t.Fatalf("after clearing the input: %v", err)
	}
}

func TestDumpIsFreshAndHidesSecrets(t *testing.T) {
	entries := sampleDumpEntries()
	a := mustEncodeDump(t, entries)
	b := mustEncodeDump(t, entries)
	if bytes.Equal(a, b) {
		t.Fatal("two dumps of the same state are identical: nonce not fresh")
	}
	if bytes.Equal(a[dumpAADSize:dumpHeaderLen], b[dumpAADSize:dumpHeaderLen]) {
		t.Fatal("two dumps share a nonce")
	}
	if !bytes.HasPrefix(a, []byte("PIZAUTHD\x01")) {
		t.Fatalf("dump starts %q, want magic and version 1", a[:9])
	}
	for _, out := range [][]byte{a, b} {
		for _, e := range entries {
			for _, s := range []string{e.Name, e.AccessToken, e.RefreshToken, string(e.SecureKey)} {
				if len(s) >= 4 && bytes.Contains(out, []byte(s)) {
					t.Errorf("dump contains %q in clear", s)
				}
			}
		}
	}
}

func TestDecodeDumpRejectsBadEnvelope(t *testing.T) {
	valid := mustEncodeDump(t, sampleDumpEntries())
	withVersion := func(v byte) []byte {
		b := bytes.Clone(valid)
		b[8] = v
		return b
	}
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 0x20
	otherKey := func() []byte {
		block, _ := aes.NewCipher(make([]byte, 32))
		aead, _ := cipher.NewGCM(block)
		b := bytes.Clone(valid[:dumpHeaderLen])
		return aead.Seal(b, b[dumpAADSize:], openTestDump(t, valid), b[:dumpAADSize])
	}
	truncated := "dump is truncated (%d bytes; a pizauth dump is at least 37 bytes)"
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"nil", nil, "dump is empty: expected the output of `pizauth dump`"},
		{"empty", []byte{}, "dump is empty: expected the output of `pizauth dump`"},
		{"text", []byte("hello"), "not a pizauth dump"},
		{"json", []byte(`{"accounts": []}` + strings.Repeat(" ", 64)), "not a pizauth dump"},
		{"magic case", append([]byte("pizauthd"), valid[8:]...), "not a pizauth dump"},
		{"magic prefix", []byte("PIZAU"), fmt.Sprintf(truncated, 5)},
		{"magic only", []byte("PIZAUTHD"), fmt.Sprintf(truncated, 8)},
		{"header only", valid[:dumpHeaderLen], fmt.Sprintf(truncated, dumpHeaderLen)},
		{"no full tag", valid[:dumpMinSize-1], fmt.Sprintf(truncated, dumpMinSize-1)},
		{"version 2", withVersion(2), "dump format version 2 is newer than this pizauth understands (1): upgrade pizauth"},
		{"version 255", withVersion(255), "dump format version 255 is newer than this pizauth understands (1): upgrade pizauth"},
		{"version 0", withVersion(0), "dump is corrupted: format version 0 does not exist"},
		{"flipped bit", flipped, "dump is corrupted or was not made by pizauth: authentication failed"},
		{"other key", otherKey(), "dump is corrupted or was not made by pizauth: authentication failed"},
		{"minimum size", valid[:dumpMinSize], "dump is corrupted or was not made by pizauth: authentication failed"},
		{"one byte short", valid[:len(valid)-1], "dump is corrupted or was not made by pizauth: authentication failed"},
		{"appended byte", append(bytes.Clone(valid), 0), "dump is corrupted or was not made by pizauth: authentication failed"},
		{"two dumps", append(bytes.Clone(valid), valid...), "dump is corrupted or was not made by pizauth: authentication failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeDump(tc.in)
			checkDumpErr(t, err, tc.want)
			if got != nil {
				t.Errorf("returned %d entries alongside an error", len(got))
			}
		})
	}
}

func TestDecodeDumpRejectsBadPayload(t *testing.T) {
	pb := func() *payloadBuilder { return &payloadBuilder{} }
	active := func(p *payloadBuilder, name string) *payloadBuilder {
		return p.str(name).str("key").u8(dumpFlagActive | dumpFlagObtained | dumpFlagExpiry).
			str("SECRET-access").str("SECRET-refresh").i64(1e18).i64(1e18 + 1)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"empty payload", nil, "dump is corrupted: ends in the length of the entry count"},
		{"short count", []byte{0, 0}, "dump is corrupted: ends in the length of the entry count"},
		{"count too large", pb().u32(0xffffffff).b, "dump is corrupted: claims 4294967295 entries but only 0 bytes follow"},
		{"count beyond data", active(pb().u32(100), "a").b, "dump is corrupted: claims 100 entries but only 64 bytes follow"},
		{"fewer entries than count", active(active(pb().u32(3), "a"), "b").b,
			"dump is corrupted: entry 3 of 3: ends in the length of the account name"},
		{"junk where an entry should be", active(active(pb().u32(3), "a"), "b").raw("xxxxxxxxxx").b,
			"dump is corrupted: entry 3 of 3: account name claims 2021161080 bytes but only 6 remain"},
		{"entry cut in key length", pb().u32(1).str("abcdefgh").raw("\x00\x00").b,
			"dump is corrupted: entry 1 of 1: ends in the length of the security key"},
		{"entry cut before flags", pb().u32(1).str("name").str("").b,
			"dump is corrupted: entry 1 of 1: ends before the flags"},
		{"trailing bytes", active(pb().u32(1), "a").raw("zz").b, "dump is corrupted: 2 unexpected bytes after the last entry"},
		{"trailing entry", active(active(pb().u32(1), "a"), "b").b, "dump is corrupted: 64 unexpected bytes after the last entry"},
		{"name length 4 GB", pb().u32(1).u32(0xffffffff).raw("abcdefgh").b,
			"dump is corrupted: entry 1 of 1: account name claims 4294967295 bytes but only 8 remain"},
		{"key length 4 GB", pb().u32(1).str("a").u32(0xfffffff0).raw("abcd").b,
			"dump is corrupted: entry 1 of 1: security key claims 4294967280 bytes but only 4 remain"},
		{"access length 4 GB", pb().u32(1).str("a").str("k").u8(1).u32(0xffffffff).raw("SECRET-access-and-more").b,
			"dump is corrupted: account \"a\": access token claims 4294967295 bytes but only 22 remain"},
		{"missing times", pb().u32(1).str("a").str("k").u8(1).str("SECRET-access").str("").i64(5).b,
			"dump is corrupted: account \"a\": ends in the expiry time"},
		{"invalid UTF-8 name", pb().u32(1).str("bad\xff\xfe").str("").u8(0).b,
			"dump is corrupted: entry 1 of 1: account name is not valid UTF-8"},
		{"active without token", pb().u32(1).str("a").str("k").u8(1).str("").str("SECRET-refresh").i64(0).i64(0).b,
			"dump is corrupted: account \"a\": active but has no access token"},
		{"duplicate names", pb().u32(2).str("same").str("").u8(0).str("same").str("x").u8(0).b,
			"dump is corrupted: account \"same\" appears twice"},
		{"unknown flags", pb().u32(1).str("a").str("").u8(0x81).b, "dump is corrupted: account \"a\": unknown flags 0x81"},
		{"inactive with time flags", pb().u32(1).str("a").str("").u8(dumpFlagExpiry).b,
			"dump is corrupted: account \"a\": inactive but has token time flags"},
		{"unset time not zero", pb().u32(1).str("a").str("").u8(dumpFlagActive).str("SECRET-access").str("").i64(7).i64(0).b,
			"dump is corrupted: account \"a\": a time marked unset is not zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeDump(sealTestPayload(tc.payload))
			checkDumpErr(t, err, tc.want)
			if got != nil {
				t.Errorf("returned %d entries alongside an error", len(got))
			}
		})
	}
}

func TestDecodeDumpAcceptsHandBuiltPayload(t *testing.T) {
	// Pins the documented layout independently of encodeDump.
	p := (&payloadBuilder{}).u32(2).
		str("a").str("key-a").u8(dumpFlagActive | dumpFlagExpiry).str("tok").str("").i64(0).i64(1_700_000_000_000_000_000).
		str("b").str("").u8(0).b
	got, err := decodeDump(sealTestPayload(p))
	if err != nil {
		t.Fatal(err)
	}
	want := []dumpEntry{
		{Name: "a", SecureKey: []byte("key-a"), Active: true, AccessToken: "tok", Expiry: time.Unix(0, 1_700_000_000_000_000_000)},
		{Name: "b"},
	}
	if err := entriesEqual(got, want); err != nil {
		t.Fatal(err)
	}
	enc := mustEncodeDump(t, want)
	if payload := openTestDump(t, enc); !bytes.Equal(payload, p) {
		t.Fatalf("encodeDump payload\n%x\nwant\n%x", payload, p)
	}
}

func smallTestDump(t testing.TB) []byte {
	return mustEncodeDump(t, []dumpEntry{
		{Name: "a", SecureKey: []byte("k"), Active: true, AccessToken: "tok", RefreshToken: "r",
			Obtained: time.Unix(1_700_000_000, 0), Expiry: time.Unix(1_700_003_600, 0)},
		{Name: "b"},
	})
}

func TestDecodeDumpRejectsEveryByteFlip(t *testing.T) {
	valid := smallTestDump(t)
	b := bytes.Clone(valid)
	for i := range b {
		for x := 1; x < 256; x++ {
			b[i] ^= byte(x)
			if got, err := decodeDump(b); err == nil {
				t.Fatalf("byte %d xor %#02x accepted (%d entries)", i, x, len(got))
			}
			b[i] ^= byte(x)
		}
	}
	if !bytes.Equal(b, valid) {
		t.Fatal("test did not restore the dump")
	}
}

func TestDecodeDumpRejectsEveryTruncation(t *testing.T) {
	valid := smallTestDump(t)
	for n := range len(valid) {
		if _, err := decodeDump(valid[:n]); err == nil {
			t.Fatalf("truncation to %d of %d bytes accepted", n, len(valid))
		}
	}
}

func TestDecodeDumpRejectsRandomBytes(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range 2000 {
		b := make([]byte, r.IntN(300))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		if i%2 == 0 && len(b) >= 9 {
			copy(b, "PIZAUTHD\x01") // get past the header to the authentication
		}
		if _, err := decodeDump(b); err == nil {
			t.Fatalf("random input %x accepted", b)
		}
	}
}

func TestDecodeDumpRejectsHugeInputUnread(t *testing.T) {
	b := make([]byte, 100<<20)
	copy(b, "PIZAUTHD\x01")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := decodeDump(b)
	runtime.ReadMemStats(&after)
	checkDumpErr(t, err, "dump is too large (104857600 bytes; at most 64 MiB)")
	// Decrypting would have allocated a buffer as large as the input.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("rejecting the input allocated %d bytes", grew)
	}
	_, err = decodeDump(b[:maxDumpSize+1])
	checkDumpErr(t, err, "dump is too large (67108865 bytes; at most 64 MiB)")
	// Exactly the limit is not refused for its size.
	_, err = decodeDump(b[:maxDumpSize])
	checkDumpErr(t, err, "dump is corrupted or was not made by pizauth: authentication failed")
}

func TestEncodeDumpRefusesWhatRestoreWouldReject(t *testing.T) {
	when := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name    string
		entries []dumpEntry
		want    string
	}{
		{"active without token", []dumpEntry{{Name: "a", Active: true, RefreshToken: testRefresh}},
			`cannot dump account "a": active account has no access token`},
		{"inactive with token", []dumpEntry{{Name: "a", AccessToken: testAccess}},
			`cannot dump account "a": inactive account carries token data`},
		{"inactive with time", []dumpEntry{{Name: "a", Expiry: when}},
			`cannot dump account "a": inactive account carries token data`},
		{"duplicate", []dumpEntry{{Name: "a"}, {Name: "b"}, {Name: "a"}}, `cannot dump: account "a" appears twice`},
		{"bad UTF-8", []dumpEntry{{Name: "\xff"}}, `cannot dump account "\xff": account name is not valid UTF-8`},
		{"time too late", []dumpEntry{{Name: "a", Active: true, AccessToken: testAccess, Expiry: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}},
			`cannot dump account "a": time 2300-01-01T00:00:00Z is outside the range a dump can hold (1677 to 2262)`},
		{"too large", []dumpEntry{{Name: "a", Active: true, AccessToken: strings.Repeat("x", maxDumpSize)}},
			"cannot dump: the state is too large (at least 67108902 bytes; a dump holds at most 64 MiB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeDump(tc.entries)
			checkDumpErr(t, err, tc.want)
			if b != nil {
				t.Error("returned bytes alongside an error")
			}
		})
	}
}

func TestEncodeDumpLargestAccepted(t *testing.T) {
	// A dump of exactly maxDumpSize bytes is written and restored.
	overhead := dumpMinSize + 4 + dumpMinEntrySize + 1 + 4 + 4 + 16
	e := []dumpEntry{{Name: "a", Active: true, AccessToken: strings.Repeat("x", maxDumpSize-overhead)}}
	b := mustEncodeDump(t, e)
	if len(b) != maxDumpSize {
		t.Fatalf("dump is %d bytes, want %d", len(b), maxDumpSize)
	}
	got, err := decodeDump(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := entriesEqual(got, e); err != nil {
		t.Fatal(err)
	}
	e[0].AccessToken += "x"
	if _, err := encodeDump(e); err == nil {
		t.Fatal("one byte over maxDumpSize accepted")
	}
}

// parseFuzzSeed reads a file in the `go test fuzz v1` format holding one []byte.
func parseFuzzSeed(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(strings.TrimSpace(string(data)), "\n", 2)
	if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
		!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s: not a fuzz seed file", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// The committed seed keeps the fuzzer starting from a dump that passes
// authentication; if the key or format changes it must be regenerated.
func TestDumpFuzzSeedIsValidDump(t *testing.T) {
	b := parseFuzzSeed(t, filepath.Join("testdata", "fuzz", "FuzzRestore", "valid-dump"))
	got, err := decodeDump(b)
	if err != nil {
		t.Fatalf("committed seed no longer decodes: %v", err)
	}
	if len(got) == 0 {
		t.Fatal("committed seed holds no entries")
	}
}

// forgedCountPayload claims count entries and carries enough bytes for the
// claim to pass the size check, but only the first entry is real: the
// second starts with a name length no payload can satisfy.
func forgedCountPayload(count int) []byte {
	p := (&payloadBuilder{}).u32(uint32(count)).str("a").str("").u8(0)
	return append(p.b, bytes.Repeat([]byte{0xff}, count*dumpMinEntrySize)...)
}

// A forged header that claims 466,033 entries costs what the bytes really
// read cost, not memory sized by the claim: before, restore allocated 87 MB
// for this 4 MB dump, and 1.4 GB at the 64 MiB limit, enough for an
// out-of-memory kill to lose every token.
func TestDecodeDumpForgedCountCostsOnlyWhatIsRead(t *testing.T) {
	d := sealTestPayload(forgedCountPayload(466033))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := decodeDump(d)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "entry 2 of 466033: account name claims 4294967295 bytes") {
		t.Fatalf("forged dump: %v", err)
	}
	// decodeDump needs one buffer for the decrypted payload; allow as
	// much again for everything else.
	if got, limit := after.TotalAlloc-before.TotalAlloc, 2*uint64(len(d)); got > limit {
		t.Errorf("decoding a %d-byte dump allocated %d bytes, more than %d", len(d), got, limit)
	}
}

// A dump is public-key sealed, so anyone can forge one: a token with CR LF
// or an escape sequence is refused as it would be from a token endpoint,
// and the whole dump with it.
func TestDecodeDumpRefusesTokensWithControlCharacters(t *testing.T) {
	for _, tc := range []struct{ access, refresh string }{
		{"tok\r\nA01 LOGOUT", ""},
		{"tok", "ref\x1b[2J"},
		{"tok\x00", "ref"},
		{"tók", "ref"},
	} {
		p := (&payloadBuilder{}).u32(2).
			str("good").str("k").u8(dumpFlagActive).str("fine").str("").i64(0).i64(0).
			str("bad").str("k").u8(dumpFlagActive).str(tc.access).str(tc.refresh).i64(0).i64(0)
		_, err := decodeDump(sealTestPayload(p.b))
		checkDumpErr(t, err, `dump is corrupted: account "bad": a token contains characters that RFC 6749 forbids in tokens`)
		_, err = encodeDump([]dumpEntry{{Name: "bad", Active: true, AccessToken: tc.access, RefreshToken: tc.refresh}})
		if err == nil {
			t.Errorf("encodeDump accepted access %q refresh %q", tc.access, tc.refresh)
		}
	}
}

func FuzzRestore(f *testing.F) {
	f.Add(smallTestDump(f))
	f.Add(mustEncodeDump(f, sampleDumpEntries()))
	f.Add([]byte("PIZAUTHD\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := decodeDump(b)
		if err != nil {
			if entries != nil {
				t.Fatal("entries returned alongside an error")
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		again, err := encodeDump(entries)
		if err != nil {
			t.Fatalf("decoded dump does not re-encode: %v", err)
		}
		back, err := decodeDump(again)
		if err != nil {
			t.Fatalf("re-encoded dump does not decode: %v", err)
		}
		if err := entriesEqual(back, entries); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDumpPayload reaches the payload parser directly: random bytes almost
// never get past authentication, so FuzzRestore alone would hardly exercise
// it. Accepted payloads must be canonical: re-encoding gives the same bytes.
func FuzzDumpPayload(f *testing.F) {
	f.Add(openTestDump(f, smallTestDump(f)))
	f.Add(openTestDump(f, mustEncodeDump(f, sampleDumpEntries())))
	f.Add([]byte{0, 0, 0, 0})
	f.Add(forgedCountPayload(100))
	f.Fuzz(func(t *testing.T, p []byte) {
		entries, err := decodeDump(sealTestPayload(p))
		if err != nil {
			return
		}
		enc, err := encodeDump(entries)
		if err != nil {
			t.Fatalf("accepted payload does not re-encode: %v", err)
		}
		if again := openTestDump(t, enc); !bytes.Equal(again, p) {
			t.Fatalf("payload not canonical:\n%x\nre-encodes as\n%x", p, again)
		}
	})
}

func benchDumpEntries() []dumpEntry {
	r := mrand.New(mrand.NewPCG(3, 4))
	randText := func(n int) []byte {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return b
	}
	now := time.Now()
	entries := make([]dumpEntry, 10_000)
	for i := range entries {
		entries[i] = dumpEntry{
			Name:         fmt.Sprintf("account-%05d", i),
			SecureKey:    randText(300),
			Active:       true,
			AccessToken:  string(randText(2048)),
			RefreshToken: string(randText(1000)),
			Obtained:     now,
			Expiry:       now.Add(time.Hour),
		}
	}
	return entries
}

func BenchmarkEncodeDump(b *testing.B) {
	entries := benchDumpEntries()
	b.ReportAllocs()
	var n int
	b.ResetTimer()
	for range b.N {
		out, err := encodeDump(entries)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
}

func BenchmarkDecodeDump(b *testing.B) {
	in, err := encodeDump(benchDumpEntries())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := decodeDump(in); err != nil {
			b.Fatal(err)
		}
	}
}
