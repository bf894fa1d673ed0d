package main

import (
	"testing"
	"time"
)

// In-process tests of state.snapshot and state.restore with an injected
// clock; dump_e2e_test.go covers the same rules through the binary.

// restoreFixture is a dump taken from a state with one account in every
// situation restore must tell apart.
func restoreFixture(t *testing.T) (conf *Config, entries []dumpEntry, dumpedAt time.Time) {
	t.Helper()
	conf = &Config{Accounts: []*Account{
		schedAccount("live"), schedAccount("expired"), schedAccount("dead"),
		schedAccount("pending"), schedAccount("empty"),
	}}
	src, clock := newTestState(t, conf)
	activate(src, "live", clock.now(), time.Hour, "rt-live")
	activate(src, "expired", clock.now().Add(-2*time.Hour), time.Hour, "rt-expired")
	activate(src, "dead", clock.now().Add(-2*time.Hour), time.Hour, "")
	if _, err := src.show("pending", true); err == nil {
		t.Fatal("show on an empty account gave a token")
	}
	return conf, src.snapshot(), clock.now()
}

func TestSnapshotOnlyActiveTokens(t *testing.T) {
	conf, entries, _ := restoreFixture(t)
	if len(entries) != len(conf.Accounts) {
		t.Fatalf("%d entries for %d accounts", len(entries), len(conf.Accounts))
	}
	for i, e := range entries {
		acct := conf.Accounts[i]
		if e.Name != acct.Name || string(e.SecureKey) != string(acct.secureKey()) {
			t.Errorf("entry %d is %q; want %q with its secure key, in config order", i, e.Name, acct.Name)
		}
		wantActive := e.Name == "live" || e.Name == "expired" || e.Name == "dead"
		if e.Active != wantActive || (!e.Active && (e.AccessToken != "" || e.RefreshToken != "" || !e.Expiry.IsZero())) {
			t.Errorf("%s: Active %v, access %q, expiry %v; only Active accounts carry tokens", e.Name, e.Active, e.AccessToken, e.Expiry)
		}
	}
}

func TestRestoreRules(t *testing.T) {
	conf, entries, dumpedAt := restoreFixture(t)
	s, clock := newTestState(t, conf)
	clock.t = dumpedAt.Add(time.Minute)
	activate(s, "live", clock.now(), 3*time.Hour, "rt-own")
	s.mu.Lock()
	s.accts["live"].access = "own"
	s.mu.Unlock()
	if _, err := s.show("dead", true); err == nil {
		t.Fatal("show on an empty account gave a token")
	}
	s.mu.Lock()
	pendingVersion := s.accts["dead"].version
	s.mu.Unlock()

	// An entry for an account that no longer exists, and one whose config
	// differs, are ignored like the rest.
	gone := entries[0]
	gone.Name = "gone"
	changed := *schedAccount("empty")
	changed.ClientID = "other"
	foreign := entries[0]
	foreign.Name, foreign.SecureKey = "empty", changed.secureKey()

	if n, _ := s.restore(append(entries, gone, foreign)); n != 1 {
		t.Errorf("restore adopted %d tokens, want 1 (expired)", n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tc := range []struct {
		name   string
		kind   tokenKind
		access string
	}{
		{"live", kindActive, "own"},               // an Active token is never replaced
		{"expired", kindActive, "access-expired"}, // refreshable: adopted even though expired
		{"dead", kindPending, ""},                 // expired, no refresh token: skipped, the pending request kept
		{"pending", kindEmpty, ""},                // a Pending entry restores nothing
		{"empty", kindEmpty, ""},                  // nor does an Empty or a foreign one
	} {
		a := s.accts[tc.name]
		if a.kind != tc.kind || a.access != tc.access {
			t.Errorf("%s: kind %v, access %q; want kind %v, access %q", tc.name, a.kind, a.access, tc.kind, tc.access)
		}
	}
	if v := s.accts["dead"].version; v != pendingVersion {
		t.Errorf("dead: version %d, was %d; a skipped entry must not disturb the pending authorisation", v, pendingVersion)
	}
	a, e := s.accts["expired"], entries[1]
	if !a.obtained.wall.Equal(e.Obtained) || !a.expiry.Equal(e.Expiry) || a.refresh != "rt-expired" {
		t.Errorf("expired: obtained %v, expires %v, refresh %q; want the dumped %v, %v", a.obtained, a.expiry, a.refresh, e.Obtained, e.Expiry)
	}
	if len(s.wakeCh) != 1 {
		t.Error("restore did not wake the refresher")
	}
}

// A restored token that is already due is refreshed in the refresher's next
// pass, and work begun before the restore cannot overwrite it.
func TestRestoredDueTokenRefreshedAtOnce(t *testing.T) {
	conf, entries, dumpedAt := restoreFixture(t)
	s, clock := newTestState(t, conf)
	clock.t = dumpedAt
	s.mu.Lock()
	before := s.accts["expired"].version
	s.mu.Unlock()
	s.restore(entries)
	if jobs, _ := s.due(clock.stamp()); len(jobs) != 1 {
		t.Errorf("%d refresh jobs right after the restore, want 1 (expired)", len(jobs))
	}
	s.mu.Lock()
	refreshing := s.accts["expired"].refreshing
	s.mu.Unlock()
	if !refreshing {
		t.Error("the expired, restored token is not being refreshed")
	}
	if s.adopt("expired", before, tokenResult{AccessToken: "late", ExpiresIn: time.Hour}, "token_new") {
		t.Error("a result of work begun before the restore overwrote the restored token")
	}
}

// A dump's times are trusted no further than a token response: an
// `obtained` in the future (a clock run ahead, a forged dump) counts as
// now, the lifetime is clamped as expires_in is, and a token whose expiry
// is not after its `obtained` has expired.
func TestRestoreClampsDumpedTimes(t *testing.T) {
	names := []string{"ahead", "ahead-norefresh", "long", "inverted", "inverted-norefresh"}
	conf := &Config{}
	for _, n := range names {
		conf.Accounts = append(conf.Accounts, schedAccount(n))
	}
	s, clock := newTestState(t, conf)
	now := clock.now()
	entry := func(i int, obtained, expiry time.Time, refresh string) dumpEntry {
		return dumpEntry{Name: names[i], SecureKey: conf.Accounts[i].secureKey(), Active: true,
			AccessToken: "access-" + names[i], RefreshToken: refresh, Obtained: obtained, Expiry: expiry}
	}
	year := 365 * 24 * time.Hour
	entries := []dumpEntry{
		entry(0, now.Add(year), now.Add(year+time.Hour), "rt"),
		entry(1, now.Add(year), now.Add(year+time.Hour), ""),
		entry(2, now.Add(-time.Hour), now.Add(100*year), "rt"),
		entry(3, now.Add(year), now.Add(year), "rt"),
		entry(4, now.Add(-time.Hour), now.Add(-2*time.Hour), ""),
	}
	if n, _ := s.restore(entries); n != 4 {
		t.Errorf("restored %d tokens, want 4 (all but the expired one without a refresh token)", n)
	}
	s.mu.Lock()
	for _, c := range []struct {
		name             string
		obtained, expiry time.Time
	}{
		{"ahead", now, now.Add(time.Hour)},
		{"ahead-norefresh", now, now.Add(time.Hour)},
		{"long", now.Add(-time.Hour), now.Add(-time.Hour + maxExpiresIn)},
		{"inverted", now, now},
	} {
		a := s.accts[c.name]
		if !a.obtained.wall.Equal(c.obtained) || !a.expiry.Equal(c.expiry) || a.lifetime != c.expiry.Sub(c.obtained) {
			t.Errorf("%s: obtained %v, expires %v (lifetime %v); want %v, %v", c.name, a.obtained.wall, a.expiry, a.lifetime, c.obtained, c.expiry)
		}
	}
	if a := s.accts["inverted-norefresh"]; a.kind != kindEmpty {
		t.Errorf("inverted-norefresh: kind %v; an expired token without a refresh token is not restored", a.kind)
	}
	s.mu.Unlock()

	// Nothing waits for the future: the inverted token has expired and is
	// refreshed as soon as one issued with no lifetime would be.
	if tok, err := s.show("inverted", true); err == nil {
		t.Errorf("show inverted: %q, want no token: it has expired", tok)
	}
	if _, next := s.due(clock.stamp()); next < 0 || next > minPacing {
		t.Errorf("after the restore the next refresh is due in %v, want within %v", next, minPacing)
	}
	clock.advance(minPacing)
	if jobs, _ := s.due(clock.stamp()); len(jobs) != 1 {
		t.Errorf("%d refreshes due %v after the restore, want 1 (inverted)", len(jobs), minPacing)
	}
	clock.advance(time.Hour)
	if tok, err := s.show("ahead-norefresh", true); err == nil {
		t.Errorf("show ahead-norefresh an hour on: %q, want no token: its hour is over", tok)
	}
}
