package main

import (
	"context"
	"testing"
	"time"
)

func schedAccount(name string) *Account {
	return &Account{
		Name: name, AuthURI: "http://auth.invalid/", TokenURI: "http://token.invalid/",
		ClientID: "id", RedirectURI: "http://localhost/",
		RefreshAtLeast: 90 * time.Minute, RefreshBeforeExpiry: 90 * time.Second, RefreshRetry: 40 * time.Second,
	}
}

func TestRefreshDue(t *testing.T) {
	acct := schedAccount("a")
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		expiresIn   time.Duration
		lastAttempt time.Duration // after t0
		failures    int
		want        time.Duration // after t0
	}{
		{"short-lived token: before expiry", time.Hour, 0, 0, time.Hour - 90*time.Second},
		{"long-lived token: refresh_at_least", 24 * time.Hour, 0, 0, 90 * time.Minute},
		{"token shorter than refresh_before_expiry: half its lifetime", 30 * time.Second, 0, 0, 15 * time.Second},
		{"12 s token, 6 s before expiry: refresh_retry does not postpone it", 12 * time.Second, 0, 0, 6 * time.Second},
		{"expires_in 0: no tight loop", 0, 0, 0, time.Second},
		{"expires_in 1: no tight loop", time.Second, 0, 0, time.Second},
		{"after a failure: retry interval", time.Hour, 10 * time.Minute, 1, 10*time.Minute + 40*time.Second},
		{"after many failures: still the retry interval", time.Hour, 2 * time.Hour, 7, 2*time.Hour + 40*time.Second},
	} {
		got := refreshDue(acct, t0, t0.Add(tc.expiresIn), t0.Add(tc.lastAttempt), tc.failures)
		if want := t0.Add(tc.want); !got.Equal(want) {
			t.Errorf("%s: due %v, want %v", tc.name, got.Sub(t0), tc.want)
		}
	}
}

func TestSleepFor(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		next time.Time
		want time.Duration
	}{
		{time.Time{}, maxSleep},
		{now.Add(-time.Hour), 0},
		{now.Add(5 * time.Second), 5 * time.Second},
		{now.Add(10 * time.Hour), maxSleep},
	} {
		if got := sleepFor(now, tc.next); got != tc.want {
			t.Errorf("sleepFor(%v) = %v, want %v", tc.next.Sub(now), got, tc.want)
		}
	}
}

// fakeClock is an injectable wall clock that tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestState(t *testing.T, conf *Config) (*state, *fakeClock) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := newState(ctx, conf, newProvider())
	clock := &fakeClock{time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	s.now = clock.now
	s.httpPort = 8080
	return s, clock
}

func activate(s *state, name string, now time.Time, life time.Duration, refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accts[name]
	a.kind, a.version = kindActive, s.bump()
	a.access, a.refresh = "access-"+name, refresh
	a.obtained, a.expiry = now, now.Add(life)
}

// A laptop that sleeps past a token's due time refreshes it in the first
// wake-up after it resumes: due times are wall-clock instants.
func TestDueAfterSuspend(t *testing.T) {
	s, clock := newTestState(t, &Config{Accounts: []*Account{schedAccount("a"), schedAccount("b")}})
	activate(s, "a", clock.now(), time.Hour, "rt")
	activate(s, "b", clock.now(), 3*time.Hour, "rt")

	jobs, next := s.due(clock.now())
	if len(jobs) != 0 {
		t.Fatalf("%d jobs due on a fresh token", len(jobs))
	}
	if want := clock.now().Add(time.Hour - 90*time.Second); !next.Equal(want) {
		t.Fatalf("next due %v, want %v", next, want)
	}
	if d := sleepFor(clock.now(), next); d != maxSleep {
		t.Fatalf("refresher would sleep %v, want the %v cap", d, maxSleep)
	}

	clock.advance(5 * time.Hour) // the lid was closed
	jobs, _ = s.due(clock.now())
	if len(jobs) != 2 {
		t.Fatalf("%d jobs due after the jump, want both accounts", len(jobs))
	}
	s.mu.Lock()
	for _, name := range []string{"a", "b"} {
		if a := s.accts[name]; !a.refreshing || !a.lastAttempt.Equal(clock.now()) {
			t.Errorf("%s: refreshing=%v lastAttempt=%v", name, a.refreshing, a.lastAttempt)
		}
	}
	s.mu.Unlock()
	// A refresh in flight is never started twice.
	if jobs, _ := s.due(clock.now()); len(jobs) != 0 {
		t.Fatalf("%d jobs started while refreshes are in flight", len(jobs))
	}
}

func TestDueWithoutRefreshToken(t *testing.T) {
	s, clock := newTestState(t, &Config{Accounts: []*Account{schedAccount("a")}})
	activate(s, "a", clock.now(), time.Hour, "")
	if _, next := s.due(clock.now()); !next.Equal(clock.now().Add(time.Hour)) {
		t.Fatalf("next = %v, want the expiry", next)
	}
	clock.advance(time.Hour)
	s.due(clock.now())
	s.mu.Lock()
	defer s.mu.Unlock()
	if k := s.accts["a"].kind; k != kindEmpty {
		t.Fatalf("expired token without refresh token left in kind %v", k)
	}
}

func TestAuthNotificationsRepeat(t *testing.T) {
	conf := &Config{AuthNotifyCmd: "true", AuthNotifyInterval: 15 * time.Minute, Accounts: []*Account{schedAccount("a")}}
	s, clock := newTestState(t, conf)
	if _, err := s.show("a", false); err == nil {
		t.Fatal("show on an empty account gave a token")
	}
	first := clock.now()
	clock.advance(14 * time.Minute)
	if jobs, next := s.due(clock.now()); len(jobs) != 0 || !next.Equal(first.Add(15*time.Minute)) {
		t.Fatalf("%d jobs, next %v: notified too early", len(jobs), next)
	}
	clock.advance(time.Minute)
	if jobs, _ := s.due(clock.now()); len(jobs) != 1 {
		t.Fatalf("%d jobs at the interval, want one notification", len(jobs))
	}
	if jobs, _ := s.due(clock.now()); len(jobs) != 0 {
		t.Fatalf("notified twice at the same instant")
	}
}

// Work that started before a revoke must not bring the token back.
func TestStaleResultDiscarded(t *testing.T) {
	s, clock := newTestState(t, &Config{Accounts: []*Account{schedAccount("a")}})
	activate(s, "a", clock.now(), time.Hour, "rt")
	s.mu.Lock()
	v := s.accts["a"].version
	s.mu.Unlock()
	if err := s.revoke("a"); err != nil {
		t.Fatal(err)
	}
	if s.adopt("a", v, tokenResult{AccessToken: "late", ExpiresIn: time.Hour}, "token_refreshed") {
		t.Fatal("a refresh that started before the revoke was adopted")
	}
	if tok, err := s.show("a", true); err == nil {
		t.Fatalf("revoked account shows token %q", tok)
	}
}
