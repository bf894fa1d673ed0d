package main

import (
	"bytes"
	"encoding/binary"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// End-to-end tests of `pizauth dump` and `pizauth restore` (SPEC §9): dumps
// travel between separate server processes exactly as a user's shell would
// carry them, and restore is judged by what `status` and `show` print.

// dump runs `pizauth dump` and returns exactly the bytes it wrote.
func (s *srv) dump(t *testing.T) []byte {
	t.Helper()
	out, errOut, code := s.run("dump")
	if code != 0 || errOut != "" || out == "" {
		t.Fatalf("pizauth dump: exit %d, %d bytes on stdout, stderr %q; want exit 0 and a dump", code, len(out), errOut)
	}
	return []byte(out)
}

// restore runs `pizauth restore` with d on stdin, which must succeed with
// nothing on stdout and one line on stderr saying what it restored, which
// it returns.
func (s *srv) restore(t *testing.T, d []byte) string {
	t.Helper()
	out, errOut, code := s.runIn(bytes.NewReader(d), "restore")
	if code != 0 || out != "" || !strings.HasPrefix(errOut, "Restored ") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("pizauth restore: exit %d, stdout %q, stderr %q; want exit 0 and one line on stderr", code, out, errOut)
	}
	return errOut
}

// TestE2EDumpRestoreRoundTrip: a token authorised on one server survives,
// via dump and restore, into a second server process; show prints it
// without a new authorisation, with its original times, and the second
// server's refresher then renews it.
func TestE2EDumpRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	p.setExpiresIn(10)
	c := p.addClient(fakeClient{Scopes: []string{"mail"}})
	conf := e2eConf(nil, p.account("acct", c, ""))

	// No refresh may complete until the restored token has been seen:
	// on the first server it would rotate the refresh token in the dump,
	// on the second it would replace the token before show prints it.
	// A hold catches the first server's refresh, if it gets that far (the
	// request dies with the server), and another the second server's.
	release1 := p.hold("refresh_token")
	release2 := p.hold("refresh_token")
	s1 := startSrv(t, conf)
	tok := s1.authorise(t, "acct")
	obtained, expires := s1.activeTimes(t, "acct")
	d := s1.dump(t)
	s1.stop()

	s2 := startSrv(t, conf)
	if st := s2.state(t, "acct"); st != "No access token" {
		t.Fatalf("fresh server: status %q", st)
	}
	s2.restore(t, d)
	if got := s2.showToken(t, "acct"); got != tok {
		t.Fatalf("after restore, show printed %q; want the dumped token %q", got, tok)
	}
	// Wall-clock times: the token expires when it really expires, not
	// some time after the restore.
	if o2, e2 := s2.activeTimes(t, "acct"); !o2.Equal(obtained) || !e2.Equal(expires) {
		t.Errorf("restored token obtained %v, expires %v; the dumped one was obtained %v, expires %v", o2, e2, obtained, expires)
	}
	if n := len(p.requests("/authorize", "")); n != 1 || p.count("authorization_code") != 1 {
		t.Errorf("%d authorisation requests and %d code exchanges; want 1 of each (restore needs no new authorisation)", n, p.count("authorization_code"))
	}
	release1()
	release2()
	tok2 := s2.waitToken(t, "acct", tok)
	if !slices.Contains(p.tokens(c.ID), tok2) || p.count("refresh_token") < 1 {
		t.Errorf("new token %q did not come from a refresh", tok2)
	}
	if n := p.count("authorization_code"); n != 1 {
		t.Errorf("%d code exchanges; the restored refresh token should have been used instead", n)
	}
}

// TestE2ERestoreDueRefreshedAtOnce: a dumped token that expired while no
// server ran (a night with the laptop off) is refreshed as soon as it is
// restored, without waiting for anyone to ask for it. The restoring server
// has nothing else to do, so its refresher would otherwise sleep for
// maxSleep (37 s), longer than waitFor's 15 s.
func TestE2ERestoreDueRefreshedAtOnce(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	p.setExpiresIn(2)
	c := p.addClient(fakeClient{Scopes: []string{"mail"}})
	conf := e2eConf(nil, p.account("acct", c, ""))

	release := p.hold("refresh_token")
	s1 := startSrv(t, conf)
	tok := s1.authorise(t, "acct")
	_, expires := s1.activeTimes(t, "acct")
	d := s1.dump(t)
	s1.stop()
	release()

	p.setExpiresIn(3600)
	s2 := startSrv(t, conf)
	// Status times have whole seconds; wait until the token has surely
	// expired.
	e2eWait(t, 10*time.Second, func() bool { return time.Now().After(expires.Add(time.Second)) }, "the dumped token to expire")
	before := p.count("refresh_token")
	s2.restore(t, d)
	// Only status is polled: show would itself start a refresh.
	s2.waitFor(t, func() bool {
		return p.count("refresh_token") > before && e2eActiveLine.MatchString(s2.state(t, "acct"))
	}, "the restored, expired token to be refreshed")
	if _, e := s2.activeTimes(t, "acct"); e.Before(time.Now().Add(30 * time.Minute)) {
		t.Errorf("after the refresh the token expires %v; want about an hour from now", e)
	}
	if got := s2.showToken(t, "acct"); got == tok || got != p.lastToken(c.ID) {
		t.Errorf("show printed %q; want the refreshed token %q", got, p.lastToken(c.ID))
	}
}

// TestE2EDumpRestoreMerge: restore adopts a dumped Active token only into
// an account that is not Active now (an Empty or a Pending one), never over
// an Active token, and carries nothing over for accounts that were Pending
// or Empty when dumped. The dump itself shows no secret to grep or strings.
func TestE2EDumpRestoreMerge(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	var blocks []string
	clients := map[string]fakeClient{}
	for _, name := range []string{"adopt", "busy", "pend", "empty", "pendgets"} {
		c := p.addClient(fakeClient{Scopes: []string{"mail"}})
		clients[name] = c
		blocks = append(blocks, p.account(name, c, ""))
	}
	conf := e2eConf(nil, blocks...)

	a := startSrv(t, conf)
	tokAdopt := a.authorise(t, "adopt")
	a.authorise(t, "busy")
	tokPendGets := a.authorise(t, "pendgets")
	a.pendingURL(t, "pend")
	adoptStatus := a.state(t, "adopt")
	d := a.dump(t)

	// The sealing hides every secret from a byte search, and the random
	// nonce makes two dumps of the same state differ.
	secrets := append(p.secretValues(), prefixAccess, prefixRefresh, prefixSecret)
	for _, sec := range secrets {
		if bytes.Contains(d, []byte(sec)) {
			t.Errorf("the dump contains %q in the clear", sec)
		}
	}
	if d2 := a.dump(t); bytes.Equal(d, d2) {
		t.Errorf("two dumps of the same state are identical; each should have a fresh nonce")
	}

	b := startSrv(t, conf)
	tokBusy := b.authorise(t, "busy")
	pendURL := b.pendingURL(t, "pend")
	b.pendingURL(t, "pendgets")
	codes := p.count("authorization_code")
	if got, want := b.restore(t, d), "Restored 2 of the dump's accounts\n"; got != want {
		t.Errorf("restore said %q, want %q (adopt and pendgets)", got, want)
	}

	if got := b.showToken(t, "adopt"); got != tokAdopt {
		t.Errorf("adopt (Empty before the restore): show printed %q, want the dumped token %q", got, tokAdopt)
	}
	if st := b.state(t, "adopt"); st != adoptStatus {
		t.Errorf("adopt: status %q after restore; the dumping server said %q", st, adoptStatus)
	}
	if got := b.showToken(t, "pendgets"); got != tokPendGets {
		t.Errorf("pendgets (Pending before the restore): show printed %q, want the dumped token %q", got, tokPendGets)
	}
	if got := b.showToken(t, "busy"); got != tokBusy {
		t.Errorf("busy (Active before the restore): show printed %q, want its own token %q kept", got, tokBusy)
	}
	if got := b.pendingURL(t, "pend"); got != pendURL {
		t.Errorf("pend: the pending authorisation changed from %s to %s; a Pending entry in a dump must be ignored", pendURL, got)
	}
	if st := b.state(t, "empty"); st != "No access token" {
		t.Errorf("empty: status %q after restore; an Empty entry in a dump must be ignored", st)
	}
	if n := p.count("authorization_code"); n != codes {
		t.Errorf("restore caused %d code exchanges", n-codes)
	}
	for _, s := range []*srv{a, b} {
		for _, sec := range p.secretValues() {
			if strings.Contains(s.logs(), sec) {
				t.Errorf("server log contains the secret %q", sec)
			}
		}
	}
}

// TestE2ERestoreConfigChanged: a dumped token is not adopted by an account
// whose security-relevant settings differ in any one way from those it was
// obtained under; the same dump is adopted by an identical account.
func TestE2ERestoreConfigChanged(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	c := p.addClient(fakeClient{Scopes: []string{"mail"}, Fields: []fakeKV{{"login_hint", "a@example.com"}}})
	acct := p.account("acct", c, "")
	a := startSrv(t, e2eConf(nil, acct))
	tok := a.authorise(t, "acct")
	d := a.dump(t)
	a.stop()

	q := confQuote
	for _, tc := range []struct {
		name     string
		old, new string // replaced once in the account block; "" keeps it
		adopted  bool
	}{
		{"unchanged", "", "", true},
		{"refresh settings are not security-relevant", "}\n", "    refresh_before_expiry = 5m;\n    refresh_at_least = 10m;\n}\n", true},
		{"client_id", "client_id = " + q(c.ID), "client_id = " + q(c.ID+"x"), false},
		{"client_secret", "client_secret = " + q(c.Secret), "client_secret = " + q(c.Secret+"x"), false},
		{"scopes", `scopes = ["mail"]`, `scopes = ["mail", "calendar"]`, false},
		{"auth_uri", "auth_uri = " + q(p.URL+"/authorize"), "auth_uri = " + q(p.URL+"/authorize?tenant=t2"), false},
		{"auth_uri_fields", `"login_hint": "a@example.com"`, `"login_hint": "b@example.com"`, false},
		{"redirect_uri", "}\n", "    redirect_uri = \"http://127.0.0.1/\";\n}\n", false},
		{"token_uri", "token_uri = " + q(p.URL+"/token"), "token_uri = " + q(p.URL+"/token2"), false},
		{"revoke_uri", "}\n", "    revoke_uri = " + q(p.URL+"/revoke") + ";\n}\n", false},
		{"device_auth_uri", "}\n", "    device_auth_uri = " + q(p.URL+"/device") + ";\n}\n", false},
		{"token_endpoint_auth_method", "}\n", "    token_endpoint_auth_method = \"client_secret_basic\";\n}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(acct, tc.old) {
				t.Fatalf("account block lacks %q:\n%s", tc.old, acct)
			}
			s := startSrv(t, e2eConf(nil, strings.Replace(acct, tc.old, tc.new, 1)))
			said := s.restore(t, d)
			want := "Restored 0 of the dump's accounts; skipped 'acct': their settings changed since the dump\n"
			if tc.adopted {
				want = "Restored 1 of the dump's accounts\n"
			}
			if said != want {
				t.Errorf("restore said %q, want %q", said, want)
			}
			if tc.adopted {
				if got := s.showToken(t, "acct"); got != tok {
					t.Errorf("show printed %q; want the dumped token %q", got, tok)
				}
				return
			}
			if st := s.state(t, "acct"); st != "No access token" {
				t.Errorf("status %q; the token must not be adopted when %s changed", st, tc.name)
			}
		})
	}
}

// e2eZeros reads as an endless stream of zero bytes.
type e2eZeros struct{}

func (e2eZeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// sealVersionedPayload is sealTestPayload (dump_test.go) with any format
// version, so that a dump can be authentic and still from the future.
func sealVersionedPayload(version byte, payload []byte) []byte {
	d := sealTestPayload(payload)
	d[len(dumpMagic)] = version
	return dumpAEAD().Seal(d[:dumpHeaderLen], d[dumpAADSize:dumpHeaderLen], payload, d[:dumpAADSize])
}

// TestE2ERestoreBadInput: every kind of bad input makes restore exit 1 with
// a message saying what is wrong, and leaves the server exactly as it was,
// even when the bad dump is authentic up to a flaw after a good entry.
func TestE2ERestoreBadInput(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	conf := e2eConf(nil,
		p.account("acct", p.addClient(fakeClient{Scopes: []string{"mail"}}), ""),
		p.account("other", p.addClient(fakeClient{Scopes: []string{"mail"}}), ""))

	// d would give "other" a token if it were applied.
	a := startSrv(t, conf)
	tokOther := a.authorise(t, "other")
	d := a.dump(t)
	a.stop()

	s := startSrv(t, conf)
	tokAcct := s.authorise(t, "acct")
	snapshot := func() string {
		return s.mustRun(t, "status") + s.mustRun(t, "status", "-j") + s.showToken(t, "acct")
	}
	before := snapshot()

	with := func(f func([]byte)) []byte {
		c := bytes.Clone(d)
		f(c)
		return c
	}
	// An authentic payload whose first entry ("acct", inactive) and
	// second ("other", Active) are valid, followed by a flaw.
	plain := openTestDump(t, d)
	entries, err := decodeDump(d)
	if err != nil || len(entries) != 2 || entries[1].Name != "other" || !entries[1].Active {
		t.Fatalf("decoding the dump: %v, %+v", err, entries)
	}
	otherAt := 4 + 4 + len(entries[0].Name) + 4 + len(entries[0].SecureKey) + 1
	dup := binary.BigEndian.AppendUint32(nil, 3)
	dup = append(append(dup, plain[4:]...), plain[otherAt:]...)

	for _, tc := range []struct {
		name  string
		input io.Reader
		want  string // regexp for stderr
	}{
		{"empty", strings.NewReader(""), `stdin is empty`},
		{"magic only", bytes.NewReader(d[:len(dumpMagic)]), `dump is truncated \(8 bytes`},
		{"truncated in the header", bytes.NewReader(d[:20]), `dump is truncated \(20 bytes`},
		{"truncated by one byte", bytes.NewReader(d[:len(d)-1]), `dump is corrupted .*authentication failed`},
		{"truncated in half", bytes.NewReader(d[:len(d)/2]), `dump is corrupted .*authentication failed`},
		{"a byte flipped in the payload", bytes.NewReader(with(func(c []byte) { c[len(c)/2] ^= 0x01 })), `dump is corrupted .*authentication failed`},
		{"a byte flipped in the nonce", bytes.NewReader(with(func(c []byte) { c[dumpAADSize] ^= 0x80 })), `dump is corrupted .*authentication failed`},
		{"a byte flipped in the tag", bytes.NewReader(with(func(c []byte) { c[len(c)-1] ^= 0x01 })), `dump is corrupted .*authentication failed`},
		{"a byte flipped in the magic", bytes.NewReader(with(func(c []byte) { c[0] ^= 0x20 })), `not a pizauth dump`},
		{"future format version", bytes.NewReader(with(func(c []byte) { c[len(dumpMagic)] = dumpVersion + 1 })), `dump format version 2 is newer than this pizauth understands \(1\): upgrade pizauth`},
		{"authentic future format version", bytes.NewReader(sealVersionedPayload(dumpVersion+1, plain)), `dump format version 2 is newer than this pizauth understands`},
		{"format version 0", bytes.NewReader(with(func(c []byte) { c[len(dumpMagic)] = 0 })), `dump is corrupted: format version 0 does not exist`},
		{"random bytes", strings.NewReader(e2eRandomBytes(4096)), `not a pizauth dump`},
		{"authentic, trailing byte", bytes.NewReader(sealTestPayload(append(bytes.Clone(plain), 0))), `dump is corrupted: 1 unexpected bytes after the last entry`},
		{"authentic, an account twice", bytes.NewReader(sealTestPayload(dup)), `dump is corrupted: account "other" appears twice`},
		{"100 MB stream", io.MultiReader(bytes.NewReader(d), io.LimitReader(e2eZeros{}, 100<<20)), `Dump is too large \(more than 64 MiB\)`},
	} {
		out, errOut, code := s.runIn(tc.input, "restore")
		if code != 1 || out != "" || !regexp.MustCompile(`^ERROR - .*`+tc.want+`.*\n$`).MatchString(errOut) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and a message matching %q", tc.name, code, out, errOut, tc.want)
		}
		for _, sec := range p.secretValues() {
			if strings.Contains(errOut, sec) {
				t.Errorf("%s: the error message contains a secret", tc.name)
			}
		}
		if after := snapshot(); after != before {
			t.Fatalf("%s: the server's state changed:\nbefore:\n%s\nafter:\n%s", tc.name, before, after)
		}
	}

	// The intact dump does change the state, so the checks above mean
	// something.
	s.restore(t, d)
	if got := s.showToken(t, "other"); got != tokOther {
		t.Errorf("intact dump: other shows %q, want %q", got, tokOther)
	}
	if got := s.showToken(t, "acct"); got != tokAcct {
		t.Errorf("intact dump: acct shows %q, want its own %q", got, tokAcct)
	}
}

// TestE2EDumpFromTokenEventCmd: the documented set-up, a token_event_cmd
// that runs `pizauth dump` whenever tokens change, saves a dump (the hook
// can talk to the server that runs it) that restores into the next server.
func TestE2EDumpFromTokenEventCmd(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	c := p.addClient(fakeClient{Scopes: []string{"mail"}})
	saved := e2eShortDir(t) + "/dump"
	hook := confQuote("'" + e2eBin + "' dump > '" + saved + ".new' && mv '" + saved + ".new' '" + saved + "'")
	conf := e2eConf(map[string]string{"token_event_cmd": hook}, p.account("acct", c, ""))

	s1 := startSrv(t, conf)
	tok := s1.authorise(t, "acct")
	s1.waitFor(t, func() bool { return e2eRead(saved) != "" }, "token_event_cmd to save a dump")
	s1.stop()

	s2 := startSrv(t, conf)
	s2.restore(t, []byte(e2eRead(saved)))
	if got := s2.showToken(t, "acct"); got != tok {
		t.Errorf("after restoring the dump saved by token_event_cmd, show printed %q, want %q", got, tok)
	}
}
