// Client credentials kept out of the configuration file: private_key_jwt's
// key and certificate (RFC 7523 §2.2, OpenID Connect Core §9) and the
// assertions signed with them, and client_secret_cmd. Both are read when a
// configuration is loaded, at start and at reload, never per request, so a
// broken key or command fails that load and a reload keeps the old one.
// The key stays in this process's memory: no log, dump or hook sees it.

package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxSecretLine bounds the secret client_secret_cmd prints.
const maxSecretLine = 4 << 10

// secretCmdTimeout bounds client_secret_cmd; tests shorten it.
var secretCmdTimeout = hookTimeout

// clientKey is an account's private_key_jwt signing key; the zero value
// means none.
type clientKey struct {
	key any // *rsa.PrivateKey (at least 2048 bits) or *ecdsa.PrivateKey (P-256)
	// header is the JWT header, encoded: the same for every assertion. It
	// holds alg and the certificate's thumbprints, so it is part of the
	// account's secureKey.
	header string
}

// loadCredentials runs every client_secret_cmd and reads every client_key
// and client_certificate, relative paths from dir.
func loadCredentials(c *Config, dir string) error {
	for _, a := range c.Accounts {
		if a.ClientSecretCmd != "" {
			var out secretOutput
			who := fmt.Sprintf("client_secret_cmd for account '%s'", cut(a.Name, maxShown))
			// The error never quotes the output, which may hold the secret.
			_, err := execHook(context.Background(), who, a.ClientSecretCmd, []string{"PIZAUTH_ACCOUNT=" + a.Name}, secretCmdTimeout, &out)
			secret, _, _ := strings.Cut(string(out), "\n")
			switch {
			case err != nil:
				return fmt.Errorf("%v: it must print the client secret and exit 0; run it in a shell to see why not", err)
			case len(secret) > maxSecretLine || secret == "":
				return fmt.Errorf("%s exited with status 0 but its first line is empty or longer than %d bytes: it must print the client secret", who, maxSecretLine)
			}
			a.ClientSecret = secret
		}
		if a.ClientKey != "" {
			k, err := loadClientKey(inDir(dir, a.ClientKey), inDir(dir, a.ClientCertificate))
			if err != nil {
				return fmt.Errorf("Account '%s': %v", cut(a.Name, maxShown), err)
			}
			a.assertionKey = k
		}
	}
	return nil
}

func inDir(dir, path string) string {
	if path != "" && !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	return path
}

// loadClientKey reads a PEM private key (PKCS#8, PKCS#1 or SEC 1), refused
// as ssh refuses one if another user owns it or anybody else may read it,
// and the certificate at certPath, if any, which must match it.
func loadClientKey(keyPath, certPath string) (k clientKey, err error) {
	fi, err := os.Stat(keyPath)
	switch {
	case err != nil:
		return k, fmt.Errorf("Can't read client_key: %v", err)
	case fileOwner(fi) != os.Getuid():
		return k, fmt.Errorf("client_key '%s' belongs to uid %d, not to you (uid %d): refusing a key that somebody else controls", keyPath, fileOwner(fi), os.Getuid())
	case fi.Mode().Perm()&0o077 != 0:
		return k, fmt.Errorf("client_key '%s' is open to group or others (mode %04o): run 'chmod 600 %s'", keyPath, fi.Mode().Perm(), keyPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	for blk, rest := pem.Decode(keyPEM); err == nil && blk != nil && k.key == nil; blk, rest = pem.Decode(rest) {
		switch blk.Type {
		case "PRIVATE KEY":
			k.key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k.key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k.key, err = x509.ParseECPrivateKey(blk.Bytes)
		}
	}
	rsaKey, isRSA := k.key.(*rsa.PrivateKey)
	ecKey, isEC := k.key.(*ecdsa.PrivateKey)
	h := map[string]string{"alg": "RS256", "typ": "JWT"}
	switch {
	case err != nil:
		return k, fmt.Errorf("Can't read client_key '%s': %v", keyPath, err)
	case isRSA && rsaKey.N.BitLen() < 2048:
		return k, fmt.Errorf("client_key '%s' is an RSA key of %d bits: use one of at least 2048", keyPath, rsaKey.N.BitLen())
	case isEC && ecKey.Curve.Params().Name == "P-256":
		h["alg"] = "ES256"
	case !isRSA:
		return k, fmt.Errorf("client_key '%s' holds no unencrypted PEM private key that is RSA or EC on the P-256 curve", keyPath)
	}
	if certPath != "" {
		// Reads and parses the certificate and checks that it is the key's.
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return k, fmt.Errorf("client_certificate '%s' can't be used with client_key '%s': %v", certPath, keyPath, err)
		}
		// Microsoft finds the key by the SHA-1 thumbprint, others by SHA-256.
		s1, s256 := sha1.Sum(pair.Certificate[0]), sha256.Sum256(pair.Certificate[0])
		h["x5t"], h["x5t#S256"] = b64(s1[:]), b64(s256[:])
	}
	hb, _ := json.Marshal(h)
	k.header = b64(hb)
	return k, nil
}

// assertion returns a new client_assertion: signed (RS256 or ES256) claims
// that clientID, and whoever holds its key, is asking aud.
func (k clientKey) assertion(clientID, aud string) (string, error) {
	// A failure of the random source fails the signature as well.
	jti, _ := randomToken(16)
	now := time.Now().Unix()
	// Five minutes is the most some providers accept; a request needs less.
	claims, _ := json.Marshal(map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "jti": jti,
		"iat": now, "nbf": now, "exp": now + 5*60})
	msg := k.header + "." + b64(claims)
	digest := sha256.Sum256([]byte(msg))
	if key, ok := k.key.(*ecdsa.PrivateKey); ok {
		r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
		if err != nil {
			return "", fmt.Errorf("can't sign the client assertion: %v", err)
		}
		// JWS (RFC 7518 §3.4) wants r and s as 32 bytes each, not ASN.1.
		return msg + "." + b64(append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)), nil
	}
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.key.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("can't sign the client assertion: %v", err)
	}
	return msg + "." + b64(sig), nil
}
