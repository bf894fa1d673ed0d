package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

func TestRefreshWait(t *testing.T) {
	acct := schedAccount("a")
	zero := schedAccount("zero")
	zero.RefreshRetry, zero.RefreshAtLeast, zero.RefreshBeforeExpiry = 0, 0, 0
	for _, tc := range []struct {
		name         string
		acct         *Account
		lifetime     time.Duration
		sinceAttempt time.Duration
		retryAfter   time.Duration // the failed answer's Retry-After
		failures     int
		due          time.Duration // after the token was obtained, or after the last attempt
	}{
		{"short-lived token: before expiry", acct, time.Hour, 0, 0, 0, time.Hour - 90*time.Second},
		{"long-lived token: refresh_at_least", acct, 24 * time.Hour, 0, 0, 0, 90 * time.Minute},
		{"token shorter than refresh_before_expiry: half its lifetime", acct, 30 * time.Second, 0, 0, 0, 15 * time.Second},
		{"12 s token, 6 s before expiry: refresh_retry does not postpone it", func() *Account { a := schedAccount("b"); a.RefreshBeforeExpiry = 6 * time.Second; return a }(), 12 * time.Second, 0, 0, 0, 6 * time.Second},
		{"expires_in 0: no tight loop", acct, 0, 0, 0, 0, time.Second},
		{"expires_in 1: no tight loop", acct, time.Second, 0, 0, 0, time.Second},
		{"after a failure: retry interval", acct, time.Hour, 0, 0, 1, 40 * time.Second},
		{"after many failures: still the retry interval", acct, time.Hour, 0, 0, 7, 40 * time.Second},
		{"Retry-After beyond refresh_retry: not asked again before it", acct, time.Hour, 0, 2 * time.Minute, 1, 2 * time.Minute},
		{"Retry-After within refresh_retry: refresh_retry", acct, time.Hour, 0, 10 * time.Second, 3, 40 * time.Second},
		{"all times 0s: a one-second floor", zero, time.Hour, 0, 0, 0, time.Second},
		{"refresh_retry 0s after a failure: a one-second floor", zero, time.Hour, 0, 0, 3, time.Second},
	} {
		for _, age := range []time.Duration{0, 10 * time.Second} {
			since := tc.sinceAttempt + age
			got := refreshWait(tc.acct, tc.lifetime, age, since, tc.retryAfter, tc.failures)
			if want := tc.due - age; got != want {
				t.Errorf("%s, %v on: wait %v, want %v", tc.name, age, got, want)
			}
		}
	}
}

func TestSleepFor(t *testing.T) {
	for _, tc := range []struct{ next, want time.Duration }{
		{-1, maxSleep},
		{0, 0},
		{5 * time.Second, 5 * time.Second},
		{10 * time.Hour, maxSleep},
	} {
		if got := sleepFor(tc.next); got != tc.want {
			t.Errorf("sleepFor(%v) = %v, want %v", tc.next, got, tc.want)
		}
	}
}

// fakeClock is an injectable pair of clocks that tests move by hand:
// advance moves both, as time passing does; suspend moves only the wall
// clock, as a laptop asleep does; step moves only the wall clock, as NTP
// or a restored VM snapshot does.
type fakeClock struct {
	t    time.Time
	mono time.Duration
}

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) stamp() stamp            { return stamp{c.t, c.mono} }
func (c *fakeClock) advance(d time.Duration) { c.t, c.mono = c.t.Add(d), c.mono+d }
func (c *fakeClock) suspend(d time.Duration) { c.t = c.t.Add(d) }
func (c *fakeClock) step(d time.Duration)    { c.t = c.t.Add(d) }

func newTestState(t *testing.T, conf *Config) (*state, *fakeClock) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := newState(ctx, conf, newProvider())
	clock := &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	s.clock = clock.stamp
	s.httpPort = 8080
	return s, clock
}

// stampAt is the stamp of a past wall-clock instant, as restore makes it.
func (s *state) stampAt(wall time.Time) stamp {
	now := s.clock()
	return stamp{wall, now.mono - now.wall.Sub(wall)}
}

func activate(s *state, name string, now time.Time, life time.Duration, refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accts[name]
	a.kind, a.version = kindActive, s.bump()
	a.access, a.refresh = "access-"+name, refresh
	a.obtained, a.lifetime, a.expiry = s.stampAt(now), life, now.Add(life)
}

// A laptop that sleeps past a token's due time refreshes it in the first
// wake-up after it resumes: the wall clock shows the time asleep.
func TestDueAfterSuspend(t *testing.T) {
	s, clock := newTestState(t, &Config{Accounts: []*Account{schedAccount("a"), schedAccount("b")}})
	activate(s, "a", clock.now(), time.Hour, "rt")
	activate(s, "b", clock.now(), 3*time.Hour, "rt")

	jobs, next := s.due(clock.stamp())
	if len(jobs) != 0 {
		t.Fatalf("%d jobs due on a fresh token", len(jobs))
	}
	if want := time.Hour - 90*time.Second; next != want {
		t.Fatalf("next due in %v, want %v", next, want)
	}
	if d := sleepFor(next); d != maxSleep {
		t.Fatalf("refresher would sleep %v, want the %v cap", d, maxSleep)
	}

	clock.suspend(5 * time.Hour) // the lid was closed
	jobs, _ = s.due(clock.stamp())
	if len(jobs) != 2 {
		t.Fatalf("%d jobs due after the jump, want both accounts", len(jobs))
	}
	s.mu.Lock()
	for _, name := range []string{"a", "b"} {
		if a := s.accts[name]; !a.refreshing || !a.lastAttempt.wall.Equal(clock.now()) {
			t.Errorf("%s: refreshing=%v lastAttempt=%v", name, a.refreshing, a.lastAttempt)
		}
	}
	s.mu.Unlock()
	// A refresh in flight is never started twice.
	if jobs, _ := s.due(clock.stamp()); len(jobs) != 0 {
		t.Fatalf("%d jobs started while refreshes are in flight", len(jobs))
	}
}

// A wall clock stepped backwards (NTP after a dual boot, a restored VM
// snapshot) neither revives an expired token nor postpones its refresh:
// the token's lifetime also runs on the monotonic clock.
func TestClockSteppedBack(t *testing.T) {
	s, clock := newTestState(t, &Config{Accounts: []*Account{schedAccount("a"), schedAccount("b")}})
	activate(s, "a", clock.now(), time.Hour, "")
	activate(s, "b", clock.now(), time.Hour, "rt")
	clock.advance(30 * time.Minute)
	clock.step(-3 * time.Hour)
	if _, next := s.due(clock.stamp()); next != 30*time.Minute-90*time.Second {
		t.Errorf("after a step back: next due in %v, want %v", next, 30*time.Minute-90*time.Second)
	}
	clock.advance(31 * time.Minute)
	if tok, err := s.show("b", true); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("token past its lifetime shown after the wall clock went back 3 h: %q, %v", tok, err)
	}
	jobs, _ := s.due(clock.stamp())
	s.mu.Lock()
	kind := s.accts["a"].kind
	s.mu.Unlock()
	if kind != kindEmpty {
		t.Errorf("expired token without a refresh token kept after a step back: kind %v", kind)
	}
	if len(jobs) != 1 { // a's log line; b's refresh was started by show
		t.Errorf("%d jobs, want 1", len(jobs))
	}
	st := s.statusText()
	if !strings.Contains(st, "a: No access token") || !strings.Contains(st, "b: Access token expired") {
		t.Errorf("status after a step back:\n%s", st)
	}
}

func TestDueWithoutRefreshToken(t *testing.T) {
	s, clock := newTestState(t, &Config{Accounts: []*Account{schedAccount("a")}})
	activate(s, "a", clock.now(), time.Hour, "")
	if _, next := s.due(clock.stamp()); next != time.Hour {
		t.Fatalf("next = %v, want the expiry", next)
	}
	clock.advance(time.Hour)
	s.due(clock.stamp())
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
	clock.advance(14 * time.Minute)
	if jobs, next := s.due(clock.stamp()); len(jobs) != 0 || next != time.Minute {
		t.Fatalf("%d jobs, next in %v: notified too early", len(jobs), next)
	}
	clock.advance(time.Minute)
	if jobs, _ := s.due(clock.stamp()); len(jobs) != 1 {
		t.Fatalf("%d jobs at the interval, want one notification", len(jobs))
	}
	if jobs, _ := s.due(clock.stamp()); len(jobs) != 0 {
		t.Fatalf("notified twice at the same instant")
	}
	// auth_notify_interval = 0s notifies at most once a second.
	s.conf.AuthNotifyInterval = 0
	clock.advance(999 * time.Millisecond)
	if jobs, next := s.due(clock.stamp()); len(jobs) != 0 || next != time.Millisecond {
		t.Fatalf("interval 0s: %d jobs, next in %v; want a one-second pace", len(jobs), next)
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

// Retry-After is delta-seconds or an HTTP date, honoured up to an hour.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"1.5", 0},
		{"86400", time.Hour},
		{"99999999999999999999999", time.Hour},
		{"Thu, 01 Jan 2026 12:02:30 GMT", 150 * time.Second},
		{"Thursday, 01-Jan-26 12:02:30 GMT", 150 * time.Second}, // RFC 850
		{"Thu Jan  1 12:02:30 2026", 150 * time.Second},         // asctime
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0},
		{"Sat, 03 Jan 2026 12:00:00 GMT", time.Hour},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("Retry-After %q: %v, want %v", tc.v, got, tc.want)
		}
	}
}

// A device poll that fails (a CDN page, a 503) waits twice as long each
// time, up to a minute, and at least any Retry-After; the provider's next
// real answer, even "authorization_pending", restores the interval it
// granted.
func TestDevicePollBackoff(t *testing.T) {
	answers := make(chan quirk, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		q := <-answers
		w.Header().Set("Content-Type", "text/html")
		if q.header != "" {
			w.Header().Set("Retry-After", q.header)
		}
		w.WriteHeader(q.status)
		io.WriteString(w, q.body)
	}))
	t.Cleanup(srv.Close)
	dev := schedAccount("a")
	dev.TokenURI, dev.DeviceAuthURI = srv.URL, srv.URL
	s, clock := newTestState(t, &Config{Accounts: []*Account{dev}})
	version := pendingDevice(s, clock, 5*time.Second)
	cdn := quirk{status: 520, body: "<html>error code: 520</html>"}
	pending := quirk{status: 400, body: `{"error":"authorization_pending"}`}
	for i, step := range []struct {
		answer quirk
		next   time.Duration
	}{
		{cdn, 10 * time.Second},
		{cdn, 20 * time.Second},
		{cdn, 40 * time.Second},
		{cdn, time.Minute},
		{cdn, time.Minute},
		{pending, 5 * time.Second},
		{quirk{status: 503, header: "90", body: "busy"}, 90 * time.Second},
		{pending, 5 * time.Second},
	} {
		answers <- step.answer
		s.pollDevice(context.Background(), "a", version, dev, "device-code")
		if _, next := s.due(clock.stamp()); next != step.next {
			t.Fatalf("poll %d (HTTP %d): next poll in %v, want %v", i+1, step.answer.status, next, step.next)
		}
		if a := accountState(s, "a"); a.kind != kindPending {
			t.Fatalf("poll %d: the device login ended (kind %v)", i+1, a.kind)
		}
	}
}
