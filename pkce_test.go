package main

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestChallengeS256RFC7636(t *testing.T) {
	// RFC 7636 Appendix B.
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const want = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	if got := challengeS256(verifier); got != want {
		t.Fatalf("challengeS256 = %q, want %q", got, want)
	}
}

func TestNewStateAndVerifier(t *testing.T) {
	for _, tc := range []struct {
		name   string
		gen    func() (string, error)
		nbytes int
	}{
		{"state", newStateParam, 32},
		{"verifier", newVerifier, 64},
	} {
		seen := map[string]bool{}
		for range 50 {
			s, err := tc.gen()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if strings.ContainsAny(s, "=+/") {
				t.Fatalf("%s %q is not unpadded base64url", tc.name, s)
			}
			raw, err := base64.RawURLEncoding.DecodeString(s)
			if err != nil || len(raw) != tc.nbytes {
				t.Fatalf("%s %q decodes to %d bytes (%v), want %d", tc.name, s, len(raw), err, tc.nbytes)
			}
			if seen[s] {
				t.Fatalf("%s repeated: %q", tc.name, s)
			}
			seen[s] = true
		}
	}
	v, _ := newVerifier()
	if n := len(v); n < 43 || n > 128 {
		t.Fatalf("verifier length %d outside RFC 7636's 43..128", n)
	}
}
