package main

import (
	"strings"
	"testing"
	"time"
)

// An expired token that cannot be refreshed is never shown: `show` starts a
// new authorisation instead and says where to go.
func TestShowExpiredWithoutRefreshToken(t *testing.T) {
	s, clock := newTestState(t, &Config{Accounts: []*Account{schedAccount("a")}})
	activate(s, "a", clock.now(), time.Hour, "")
	if tok, err := s.show("a", false); err != nil || tok != "access-a" {
		t.Fatalf("fresh token: %q, %v", tok, err)
	}
	clock.advance(2 * time.Hour)
	tok, err := s.show("a", false)
	if err == nil || !strings.HasPrefix(err.Error(), "Token unavailable until authorised with URL http://auth.invalid/?") {
		t.Fatalf("expired token: %q, %v", tok, err)
	}
	if tok != "" {
		t.Fatalf("expired token shown: %q", tok)
	}
}

// An expired token with a refresh token is not shown either; the refresh
// starts in the background and `show` says so.
func TestShowExpiredStartsRefresh(t *testing.T) {
	s, clock := newTestState(t, &Config{Accounts: []*Account{schedAccount("a")}})
	activate(s, "a", clock.now(), time.Hour, "rt")
	clock.advance(2 * time.Hour)
	_, err := s.show("a", false)
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	s.mu.Lock()
	refreshing := s.accts["a"].refreshing
	s.mu.Unlock()
	if !refreshing {
		t.Fatal("show on an expired token did not start a refresh")
	}
}

func TestShowUnknownAccount(t *testing.T) {
	s, _ := newTestState(t, &Config{Accounts: []*Account{schedAccount("a")}})
	if _, err := s.show("b", false); err == nil || err.Error() != "No account 'b'" {
		t.Fatalf("got %v", err)
	}
}

// A login that brings no refresh token is warned about once per account,
// with the usual remedies; a refresh that omits one keeps the old one and
// is no reason to warn.
func TestNoRefreshTokenWarnedOnce(t *testing.T) {
	logs := captureLog(t, lvlWarn)
	s, _ := newTestState(t, &Config{Accounts: []*Account{schedAccount("a"), schedAccount("b")}})
	version := func(name string) uint64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.accts[name].version
	}
	for i := 0; i < 2; i++ {
		if !s.adopt("a", version("a"), tokenResult{AccessToken: "at", ExpiresIn: time.Hour}, "token_new") {
			t.Fatal("token not adopted")
		}
		s.revoke("a")
	}
	s.adopt("b", version("b"), tokenResult{AccessToken: "at", RefreshToken: "rt", ExpiresIn: time.Hour}, "token_new")
	s.adopt("b", version("b"), tokenResult{AccessToken: "at2", ExpiresIn: time.Hour}, "token_refreshed")
	l := logs.String()
	want := `WARN Account 'a': the provider sent no refresh token, so you will have to log in again when this token expires. Providers send one only when asked: for Microsoft, add the "offline_access" scope; for Google, pizauth sends access_type=offline, and auth_uri_fields = {"prompt": "consent"} makes Google send a refresh token again`
	if strings.Count(l, "no refresh token") != 1 || !strings.Contains(l, want) {
		t.Errorf("log:\n%s\nwant exactly one line containing %q", l, want)
	}
}
