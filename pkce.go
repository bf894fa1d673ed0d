package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// randomToken returns n bytes from crypto/rand encoded as base64url without
// padding, so the result can go into a URL query unescaped.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cannot read from the system's random number generator: %w", err)
	}
	return b64(b), nil
}

// b64 is base64url without padding, as PKCE and JWS (RFC 7515 §2) want.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// newStateParam returns an unguessable OAuth2 `state` (32 random bytes).
func newStateParam() (string, error) { return randomToken(32) }

// newVerifier returns a fresh PKCE code_verifier (64 random bytes, 86
// characters, within RFC 7636's 43..128 limit).
func newVerifier() (string, error) { return randomToken(64) }

// challengeS256 derives the RFC 7636 S256 code_challenge from a verifier.
func challengeS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
