package main

// Tests of client authentication without a secret in the configuration:
// private_key_jwt (keys, certificates, the assertions a provider checks)
// and client_secret_cmd. Keys and certificates are generated here.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testKeys caches keys by name: RSA generation is slow under -race.
var testKeys sync.Map

// testKey returns the key called name; its kind is the part before any
// '-': rsa, rsa1024, ec, p384 or ed25519.
func testKey(t *testing.T, name string) crypto.Signer {
	t.Helper()
	if k, ok := testKeys.Load(name); ok {
		return k.(crypto.Signer)
	}
	var k crypto.Signer
	var err error
	switch kind, _, _ := strings.Cut(name, "-"); kind {
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "rsa1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "ec":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key kind %q", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, _ := testKeys.LoadOrStore(name, k)
	return got.(crypto.Signer)
}

// testCert self-signs a certificate for key, as `openssl req -x509` does.
func testCert(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "pizauth test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// keyPEM encodes key as "pkcs8", "pkcs1" (RSA) or "sec1" (EC) PEM.
func keyPEM(t *testing.T, key crypto.Signer, format string) []byte {
	t.Helper()
	var blk *pem.Block
	switch format {
	case "pkcs8":
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		blk = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	case "pkcs1":
		blk = &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key.(*rsa.PrivateKey))}
	case "sec1":
		der, err := x509.MarshalECPrivateKey(key.(*ecdsa.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		blk = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	}
	return pem.EncodeToMemory(blk)
}

func certPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

func writeMode(t *testing.T, path string, b []byte, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // not masked by umask
		t.Fatal(err)
	}
	return path
}

// writeKeyPair writes key name as PKCS#8 (mode 0600) and a new certificate
// for it (0644) into dir, as the README's openssl commands do.
func writeKeyPair(t *testing.T, dir, name string) (keyPath, certPath string, cert *x509.Certificate) {
	t.Helper()
	key := testKey(t, name)
	cert = testCert(t, key)
	keyPath = writeMode(t, filepath.Join(dir, name+".key"), keyPEM(t, key, "pkcs8"), 0o600)
	certPath = writeMode(t, filepath.Join(dir, fmt.Sprintf("%s-%d.crt", name, cert.SerialNumber)), certPEM(cert), 0o644)
	return keyPath, certPath, cert
}

// jwtClient returns a provider client that authenticates with key name
// and a new certificate (withCert: named in the configuration too).
func jwtClient(t *testing.T, dir, name string, withCert bool, c fakeClient) fakeClient {
	t.Helper()
	var certPath string
	c.KeyFile, certPath, c.Cert = writeKeyPair(t, dir, name)
	if withCert {
		c.CertFile = certPath
	}
	return c
}

// verifyAssertion checks a client_assertion as a provider does (RFC 7523
// §3, Microsoft's certificate credentials): a JWS signed with the key of
// cert (RS256 or ES256, r||s), the header's typ and, when wantX5t, its
// x5t and x5t#S256 thumbprints of cert; iss = sub = clientID, aud, a jti,
// and iat <= nbf-free now < exp <= iat + 5 min. It returns the jti, for
// the caller's replay check, and every problem found.
func verifyAssertion(tok string, cert *x509.Certificate, wantX5t bool, clientID, aud string, now time.Time) (jti string, probs []string) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", []string{fmt.Sprintf("client_assertion has %d parts, not 3", len(parts))}
	}
	dec := base64.RawURLEncoding.DecodeString
	var header map[string]string
	var claims map[string]any
	h, err1 := dec(parts[0])
	c, err2 := dec(parts[1])
	sig, err3 := dec(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(h, &header) != nil || json.Unmarshal(c, &claims) != nil {
		return "", []string{"client_assertion is not base64url JSON"}
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if header["alg"] != "RS256" || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
			probs = append(probs, fmt.Sprintf("not a valid RS256 signature by the certificate's key (alg %q)", header["alg"]))
		}
	case *ecdsa.PublicKey:
		r, s := new(big.Int).SetBytes(sig[:min(32, len(sig))]), new(big.Int).SetBytes(sig[min(32, len(sig)):])
		if header["alg"] != "ES256" || len(sig) != 64 || !ecdsa.Verify(pub, digest[:], r, s) {
			probs = append(probs, fmt.Sprintf("not a valid ES256 signature (r||s, 64 bytes) by the certificate's key (alg %q, %d bytes)", header["alg"], len(sig)))
		}
	}
	s1, s256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw)
	want := map[string]string{"typ": "JWT", "x5t": "", "x5t#S256": ""}
	if wantX5t {
		want["x5t"], want["x5t#S256"] = base64.RawURLEncoding.EncodeToString(s1[:]), base64.RawURLEncoding.EncodeToString(s256[:])
	}
	for k, v := range want {
		if header[k] != v {
			probs = append(probs, fmt.Sprintf("header %s = %q, want %q", k, header[k], v))
		}
	}
	jti, _ = claims["jti"].(string)
	iat, _ := claims["iat"].(float64)
	nbf, _ := claims["nbf"].(float64)
	exp, _ := claims["exp"].(float64)
	switch t := float64(now.Unix()); {
	case claims["iss"] != clientID || claims["sub"] != clientID:
		probs = append(probs, fmt.Sprintf("iss %v, sub %v; want both %q", claims["iss"], claims["sub"], clientID))
	case claims["aud"] != aud:
		probs = append(probs, fmt.Sprintf("aud %v, want %q", claims["aud"], aud))
	case len(jti) < 16:
		probs = append(probs, fmt.Sprintf("jti %q is no random identifier", jti))
	case iat > t+5 || iat < t-60 || nbf > t+5 || exp <= t || exp > iat+300:
		probs = append(probs, fmt.Sprintf("iat %v, nbf %v, exp %v at %v: not valid now for at most 5 minutes", iat, nbf, exp, t))
	}
	return jti, probs
}

// TestClientAssertion: RSA and EC keys, with and without a certificate,
// sign assertions a provider accepts, each with its own jti.
func TestClientAssertion(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		withCert bool
	}{{"rsa", true}, {"ec", true}, {"ec", false}} {
		keyPath, certPath, cert := writeKeyPair(t, dir, tc.name)
		if !tc.withCert {
			certPath = ""
		}
		k, err := loadClientKey(keyPath, certPath)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		seen := map[string]bool{}
		for i := 0; i < 3; i++ {
			tok, err := k.assertion("client-1", "https://login.example.com/t/oauth2/v2.0/token")
			if err != nil {
				t.Fatal(err)
			}
			jti, probs := verifyAssertion(tok, cert, tc.withCert, "client-1", "https://login.example.com/t/oauth2/v2.0/token", time.Now())
			if len(probs) > 0 || seen[jti] {
				t.Errorf("%s (certificate %v): %q; jti %q seen before: %v", tc.name, tc.withCert, probs, jti, seen[jti])
			}
			seen[jti] = true
		}
	}

	// Relative paths are the configuration file's directory's.
	c, err := parseConfig([]byte(`account "a" { auth_uri = "https://a/"; token_uri = "https://t/"; client_id = "c";
		token_endpoint_auth_method = "private_key_jwt"; client_key = "ec.key"; }`))
	if err != nil {
		t.Fatal(err)
	}
	if err := loadCredentials(c, dir); err != nil || c.Accounts[0].assertionKey.key == nil {
		t.Errorf("relative client_key: %v", err)
	}
}

// TestClientKeyFiles: the formats openssl writes are read; a key that is
// not private, another user's, garbage, too weak, of another kind, or not
// the certificate's is refused with the path and the problem.
func TestClientKeyFiles(t *testing.T) {
	dir := t.TempDir()
	rsaKey, ecKey := testKey(t, "rsa"), testKey(t, "ec")
	rsaCert, ecCert := testCert(t, rsaKey), testCert(t, ecKey)
	file := func(name string, b []byte, mode os.FileMode) string {
		return writeMode(t, filepath.Join(dir, name), b, mode)
	}
	ecParams := []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n")
	for _, tc := range []struct{ key, cert, want string }{
		{file("pkcs8.pem", keyPEM(t, rsaKey, "pkcs8"), 0o600), file("rsa.crt", certPEM(rsaCert), 0o644), ""},
		{file("pkcs1.pem", keyPEM(t, rsaKey, "pkcs1"), 0o400), "", ""},
		// openssl ecparam -genkey writes the parameters first.
		{file("sec1.pem", append(ecParams, keyPEM(t, ecKey, "sec1")...), 0o600), file("ec.crt", certPEM(ecCert), 0o644), ""},
		// One file holding both.
		{file("both.pem", append(certPEM(ecCert), keyPEM(t, ecKey, "pkcs8")...), 0o600), filepath.Join(dir, "both.pem"), ""},

		{file("open.pem", keyPEM(t, rsaKey, "pkcs8"), 0o644), "", "is open to group or others (mode 0644): run 'chmod 600 "},
		{file("group.pem", keyPEM(t, ecKey, "sec1"), 0o640), "", "is open to group or others (mode 0640)"},
		{file("garbage.pem", []byte("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"), 0o600), "", "holds no unencrypted PEM private key"},
		{file("junk.pem", []byte("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"), 0o600), "", "holds no unencrypted PEM private key"},
		{file("bad-der.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{0x30, 3, 1, 2, 3}}), 0o600), "", "Can't read client_key '"},
		{file("encrypted.pem", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0}}), 0o600), "", "holds no unencrypted PEM private key"},
		{file("weak.pem", keyPEM(t, testKey(t, "rsa1024"), "pkcs8"), 0o600), "", "is an RSA key of 1024 bits: use one of at least 2048"},
		{file("p384.pem", keyPEM(t, testKey(t, "p384"), "pkcs8"), 0o600), "", "that is RSA or EC on the P-256 curve"},
		{file("ed25519.pem", keyPEM(t, testKey(t, "ed25519"), "pkcs8"), 0o600), "", "that is RSA or EC on the P-256 curve"},
		{filepath.Join(dir, "missing.pem"), "", "no such file or directory"},
		{filepath.Join(dir, "pkcs8.pem"), filepath.Join(dir, "ec.crt"), "can't be used with client_key '" + filepath.Join(dir, "pkcs8.pem") + "': tls: private key type does not match public key type"},
		{filepath.Join(dir, "sec1.pem"), file("ec-b.crt", certPEM(testCert(t, testKey(t, "ec-b"))), 0o644), "can't be used with client_key '" + filepath.Join(dir, "sec1.pem") + "': tls: private key does not match public key"},
		{filepath.Join(dir, "pkcs8.pem"), filepath.Join(dir, "missing.crt"), "no such file or directory"},
		{filepath.Join(dir, "pkcs8.pem"), filepath.Join(dir, "pkcs1.pem"), "can't be used with client_key"},
	} {
		_, err := loadClientKey(tc.key, tc.cert)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s, %s: %v", tc.key, tc.cert, err)
		case tc.want == "":
		case err == nil:
			t.Errorf("%s, %s: accepted, want %q", tc.key, tc.cert, tc.want)
		case !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Base(tc.key)) && !strings.Contains(err.Error(), filepath.Base(tc.cert)):
			t.Errorf("%s, %s: %v; want the path and %q", tc.key, tc.cert, err, tc.want)
		}
	}

	// Another user's key, however private, is refused as ssh refuses it.
	if os.Getuid() != 0 {
		t.Skip("needs root to give a file away")
	}
	other := file("other.pem", keyPEM(t, rsaKey, "pkcs8"), 0o600)
	if err := os.Chown(other, 65534, -1); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("client_key '%s' belongs to uid 65534, not to you (uid 0)", other)
	if _, err := loadClientKey(other, ""); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("another user's key: %v; want %q", err, want)
	}
}

// TestClientSecretCmd: the secret is the first line the command prints;
// a command that fails, prints nothing, prints too much or hangs is an
// error naming the account and the exit status, never the output.
func TestClientSecretCmd(t *testing.T) {
	old := secretCmdTimeout
	secretCmdTimeout = 3 * time.Second
	t.Cleanup(func() { secretCmdTimeout = old })
	load := func(cmd string) (*Account, error) {
		t.Helper()
		c, err := parseConfig([]byte(fmt.Sprintf(`account "app" { grant_type = "client_credentials"; token_uri = "https://t/"; client_id = "c"; client_secret_cmd = %s; }`, confQuote(cmd))))
		if err != nil {
			t.Fatal(err)
		}
		return c.Accounts[0], loadCredentials(c, t.TempDir())
	}
	for cmd, want := range map[string]string{
		`printf 'pzS3cr3t\nsecond line\n'`:    "pzS3cr3t",
		`printf %s "$PIZAUTH_ACCOUNT-secret"`: "app-secret", // no newline
		// A grandchild keeping stdout open delays the answer, not for ever.
		`(sleep 5 2>/dev/null &); echo quick`: "quick",
	} {
		a, err := load(cmd)
		if err != nil || a.ClientSecret != want {
			t.Errorf("%s: secret %q, %v; want %q", cmd, a.ClientSecret, err, want)
		}
		if c := *a; c.ClientSecret == "" || !a.secureEqual(&c) || func() bool { c.ClientSecret = "other"; return !a.secureEqual(&c) }() {
			t.Errorf("%s: the secret it printed is part of secureKey", cmd)
		}
	}
	for cmd, want := range map[string]string{
		`echo pzLEAK; exit 3`:                "client_secret_cmd for account 'app' exited with status 3: it must print the client secret and exit 0; run it in a shell to see why not",
		`echo pzLEAK; kill -9 $$`:            "client_secret_cmd for account 'app' killed by signal killed",
		`true`:                               "client_secret_cmd for account 'app' exited with status 0 but its first line is empty or longer than 4096 bytes",
		`echo; echo pzLEAK`:                  "client_secret_cmd for account 'app' exited with status 0 but its first line is empty",
		`head -c 5000 /dev/zero | tr '\0' x`: "client_secret_cmd for account 'app' exited with status 0 but its first line is empty or longer than 4096 bytes",
		`echo pzLEAK; sleep 30`:              "client_secret_cmd for account 'app' killed after 3s timeout",
	} {
		a, err := load(cmd)
		if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "pzLEAK") || strings.Contains(err.Error(), "xxxx") {
			t.Errorf("%s: %v; want %q, without the output", cmd, err, want)
		}
		if a.ClientSecret != "" {
			t.Errorf("%s: secret %q kept", cmd, a.ClientSecret)
		}
	}
}

// TestE2EPrivateKeyJWT: accounts with RSA and EC keys, with and without a
// certificate, get tokens by client credentials and by a login, refresh
// and revoke them, each request authenticated by a fresh assertion the
// provider verifies; no secret and no key material reaches the log. A
// reload with a new certificate drops the account's token; one with a key
// others can read fails and keeps everything.
func TestE2EPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	app := p.addClient(jwtClient(t, dir, "rsa", true, fakeClient{CC: true, Revoke: true, Scopes: []string{"https://outlook.office365.com/.default"}}))
	user := p.addClient(jwtClient(t, dir, "ec", true, fakeClient{Revoke: true}))
	bare := p.addClient(jwtClient(t, dir, "ec-bare", false, fakeClient{CC: true}))
	conf := func() string {
		return e2eConf(nil, p.account("app", app, ""), p.account("user", user, ""), p.account("bare", bare, ""))
	}
	s := startSrv(t, conf())

	tok := s.showToken(t, "app")
	if tok != p.lastToken(app.ID) || s.showToken(t, "bare") != p.lastToken(bare.ID) {
		t.Fatalf("show printed tokens the provider did not issue")
	}
	utok := s.authorise(t, "user")
	s.mustRun(t, "refresh", "user")
	s.waitToken(t, "user", utok)
	s.mustRun(t, "revoke", "user")
	s.waitFor(t, func() bool { return len(p.clientRequests("/revoke", user.ID)) == 2 }, "both revocations")
	for _, path := range []string{"/token", "/revoke"} {
		for _, r := range p.requests(path, "") {
			if r.Auth != "jwt" || r.Status != 200 {
				t.Errorf("%s %s for %s: authentication %q, status %d", path, r.Grant, r.ClientID, r.Auth, r.Status)
			}
		}
	}
	if n := len(p.requests("/token", "")); n != 4 {
		t.Errorf("%d token requests, want 4 (two client credentials, a code exchange, a refresh)", n)
	}

	// Reloading the same file keeps every token; a new certificate for
	// app's key (registered at the provider) is a new identity.
	s.mustRun(t, "reload")
	if got := s.showToken(t, "app"); got != tok {
		t.Errorf("a reload that changed nothing changed app's token")
	}
	var certPath string
	_, certPath, app.Cert = writeKeyPair(t, dir, "rsa")
	app.CertFile = certPath
	p.addClient(app)
	s.writeConf(t, conf())
	s.mustRun(t, "reload")
	if st := s.state(t, "app"); st != "No access token" {
		t.Errorf("after a reload with another certificate: %q", st)
	}
	tok = s.waitToken(t, "app", "")
	btok := s.showToken(t, "bare")

	if err := os.Chmod(bare.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("ERROR - Account 'bare': client_key '%s' is open to group or others (mode 0644): run 'chmod 600 %s'\n", bare.KeyFile, bare.KeyFile)
	if out, errOut, code := s.run("reload"); code != 1 || errOut != want {
		t.Errorf("reload with an open key: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	if s.showToken(t, "app") != tok || s.showToken(t, "bare") != btok {
		t.Errorf("a failed reload changed tokens")
	}

	logs := s.logs()
	for _, name := range []string{"rsa", "ec", "ec-bare"} {
		der, _ := x509.MarshalPKCS8PrivateKey(testKey(t, name))
		b64der := base64.StdEncoding.EncodeToString(der)
		if strings.Contains(logs, "PRIVATE KEY") || strings.Contains(logs, b64der[len(b64der)/2:len(b64der)/2+32]) {
			t.Errorf("key %s in the log", name)
		}
	}
	for _, secret := range p.secretValues() {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds a secret: %.20s…", secret)
		}
	}
}

// TestE2EClientKeyRefusedAtStart: a key others can read stops the server
// from starting, with the account, the path and the fix.
func TestE2EClientKeyRefusedAtStart(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	c := p.addClient(jwtClient(t, dir, "ec", true, fakeClient{CC: true}))
	if err := os.Chmod(c.KeyFile, 0o604); err != nil {
		t.Fatal(err)
	}
	s := newSrvEnv(t, e2eConf(nil, p.account("app", c, "")))
	t.Cleanup(func() { s.stopDetached(t) })
	want := fmt.Sprintf("Account 'app': client_key '%s' is open to group or others (mode 0604): run 'chmod 600 %s'", c.KeyFile, c.KeyFile)
	if _, errOut, code := s.run("server", "-c", s.confPath); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("server with an open key: exit %d, stderr %q; want %q", code, errOut, want)
	}
	if _, err := os.Stat(s.socketPath()); err == nil {
		t.Errorf("a refused start left a socket behind")
	}
}

// TestE2EClientSecretCmd: the secret comes from a command, run at start
// and at reload. A rotated secret keeps the token and is used from then
// on; another command drops it; a failing command fails the start or the
// reload, naming the account and the exit status but not the output.
func TestE2EClientSecretCmd(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	c := p.addClient(fakeClient{CC: true, SecretCmd: "cat " + secretFile})
	writeMode(t, secretFile, []byte(c.Secret+"\n"), 0o600)
	s := startSrv(t, e2eConf(nil, p.account("app", c, "")))
	tok := s.showToken(t, "app")
	if tok != p.lastToken(c.ID) {
		t.Fatalf("show printed %q, not the token the provider issued", tok)
	}

	rotated := p.addClient(fakeClient{CC: true, ID: c.ID, SecretCmd: c.SecretCmd})
	writeMode(t, secretFile, []byte(rotated.Secret+"\n"), 0o600)
	s.mustRun(t, "reload")
	if got := s.showToken(t, "app"); got != tok {
		t.Errorf("a reload whose command printed a rotated secret dropped the token")
	}
	s.mustRun(t, "refresh", "app")
	tok = s.waitToken(t, "app", tok)

	failing := fakeClient{CC: true, ID: c.ID, SecretCmd: "echo pzLEAK; exit 4"}
	s.writeConf(t, e2eConf(nil, p.account("app", failing, "")))
	want := "ERROR - client_secret_cmd for account 'app' exited with status 4: it must print the client secret and exit 0; run it in a shell to see why not\n"
	if out, errOut, code := s.run("reload"); code != 1 || errOut != want {
		t.Errorf("reload with a failing command: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	if got := s.showToken(t, "app"); got != tok {
		t.Errorf("a failed reload changed the token")
	}
	if strings.Contains(s.logs(), "pzLEAK") {
		t.Errorf("the command's output reached the log")
	}

	rotated.SecretCmd = "cat  " + secretFile
	s.writeConf(t, e2eConf(nil, p.account("app", rotated, "")))
	s.mustRun(t, "reload")
	if st := s.state(t, "app"); st != "No access token" {
		t.Errorf("after a reload with another command: %q", st)
	}
	s.waitToken(t, "app", "")

	s2 := newSrvEnv(t, e2eConf(nil, p.account("app", fakeClient{CC: true, ID: c.ID, SecretCmd: "echo pzLEAK"}, ""),
		p.account("quiet", fakeClient{CC: true, ID: c.ID, SecretCmd: "true"}, "")))
	t.Cleanup(func() { s2.stopDetached(t) })
	want = "client_secret_cmd for account 'quiet' exited with status 0 but its first line is empty or longer than 4096 bytes: it must print the client secret"
	if _, errOut, code := s2.run("server", "-c", s2.confPath); code != 1 || !strings.Contains(errOut, want) || strings.Contains(errOut, "pzLEAK") {
		t.Errorf("server whose command prints nothing: exit %d, stderr %q; want %q", code, errOut, want)
	}
}

// TestE2ESIGTERMDuringSlowReload: a SIGHUP reload waiting on a slow
// client_secret_cmd does not hold up the SIGTERM that follows: the server
// stops while the command still runs.
func TestE2ESIGTERMDuringSlowReload(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	slow, done := filepath.Join(dir, "slow"), filepath.Join(dir, "done")
	c := p.addClient(fakeClient{CC: true})
	c.SecretCmd = fmt.Sprintf("if [ -e %s ]; then sleep 5; touch %s; fi; echo %s", slow, done, c.Secret)
	s := startSrv(t, e2eConf(nil, p.account("app", c, "")))
	s.showToken(t, "app")
	writeMode(t, slow, nil, 0o600)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, func() bool { return strings.Contains(s.logs(), "running client_secret_cmd") }, "the reload to run the command")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.waitExit(t)
	if _, err := os.Stat(done); err == nil {
		t.Errorf("the server stopped only once the reload's client_secret_cmd had finished")
	}
}

// TestE2EReloadWaitsForSecretCmd: `pizauth reload` waits for a
// client_secret_cmd that runs into its 10 s timeout, and prints why the
// reload failed, rather than giving up on the server.
func TestE2EReloadWaitsForSecretCmd(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	hang := filepath.Join(t.TempDir(), "hang")
	c := p.addClient(fakeClient{CC: true})
	c.SecretCmd = fmt.Sprintf("if [ -e %s ]; then sleep 60; fi; echo %s", hang, c.Secret)
	s := startSrv(t, e2eConf(nil, p.account("app", c, "")))
	tok := s.showToken(t, "app")
	writeMode(t, hang, nil, 0o600)
	want := "ERROR - client_secret_cmd for account 'app' killed after 10s timeout: it must print the client secret and exit 0; run it in a shell to see why not\n"
	if out, errOut, code := s.run("reload"); code != 1 || errOut != want {
		t.Errorf("reload with a hanging command: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
	if got := s.showToken(t, "app"); got != tok {
		t.Errorf("a failed reload changed the token")
	}
}
