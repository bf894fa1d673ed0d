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
