package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProvider is an OAuth2 authorisation server for the end-to-end tests.
// It is deliberately strict: every request pizauth sends is checked against
// SPEC §5 and §7 (parameter order, PKCE S256, single-use codes, the exact
// redirect URI, client credentials, no secret in a URL), and any deviation
// fails the test that owns it. Everything secret it hands out or receives
// has a recognisable prefix and is remembered, so tests can prove that no
// secret reaches a log.
type fakeProvider struct {
	t    *testing.T
	URL  string // base URL; /authorize and /token live under it
	srv  *httptest.Server
	quit chan struct{}

	mu        sync.Mutex
	clients   map[string]fakeClient
	codes     map[string]*fakeCode
	refreshes map[string]string // live refresh token → client id
	reqs      []fakeRequest
	faults    []fakeFault
	holds     []*fakeHold
	denials   int
	issued    map[string][]string // client id → access tokens, oldest first
	secrets   []string
	problems  []string
	tolerate  bool // record problems without failing the test (self-test only)
	expiresIn any  // int, string or nil (omitted)
	tokenType string
	noRefresh bool // issue no refresh token with a code exchange
	rotate    bool // issue a new refresh token on every refresh
	redirects map[string]string

	// Device authorisation (RFC 8628) and revocation (RFC 7009).
	devices     map[string]*fakeDevice // device code → request
	devScripts  map[string][]string    // client id → answers to its next polls
	devFaults   []fakeFault            // replace the next device authorisation answers
	devHolds    []*fakeHold            // hold the next device authorisation requests
	devInterval any                    // interval sent: int, string or nil (omitted)
	devExpires  any                    // expires_in sent: int, string or nil (omitted)
	devComplete bool                   // send verification_uri_complete
	devLegacy   bool                   // spell it verification_url, as Google does
	revFaults   []fakeFault            // replace the next revocation answers
	userCodes   map[string]string      // client id → latest user code
	jtis        map[string]bool        // every client assertion's jti

	// Token introspection (RFC 7662), for resource servers such as Dovecot.
	expiries         map[string]time.Time // access token → when it expires (absent: never)
	owners           map[string]string    // access token → client id
	IntrospectID     string               // the resource server's credentials
	IntrospectSecret string
}

// fakeDevice is one device authorisation the provider has issued.
type fakeDevice struct {
	client   string
	userCode string
	interval time.Duration // current minimum gap between polls
	lastPoll time.Time
	done     bool // approved, denied or expired: no further polls expected
}

// fakeClient is one registered OAuth2 client. The same value generates the
// account block of the configuration (fakeProvider.account) and the
// provider's expectations, so the two cannot drift apart.
type fakeClient struct {
	ID     string
	Secret string // filled in by addClient unless Public
	Public bool   // no client secret at all
	Scopes []string
	// RedirectURI is the account's redirect_uri as configured; "" means the
	// default http://localhost/ (and no redirect_uri line is written).
	RedirectURI string
	AuthQuery   string // query already present in auth_uri, e.g. "tenant=t1"
	Fields      []fakeKV
	// LegacyLoginHint writes Fields[0] (which must be login_hint) with the
	// deprecated `login_hint = ...;` setting instead of auth_uri_fields.
	LegacyLoginHint bool
	// Basic makes every endpoint demand HTTP Basic client authentication
	// (and account() write token_endpoint_auth_method accordingly).
	Basic bool
	// Device makes account() configure the device flow (device_auth_uri,
	// no auth_uri).
	Device bool
	// Revoke makes account() write a revoke_uri.
	Revoke bool
	// CC makes account() configure the client credentials grant (no
	// auth_uri), and the token endpoint grant it to this client only.
	CC bool
	// User is the user name introspection reports for the client's tokens:
	// the mail server checks it against the login name.
	User string
	// Cert, with KeyFile, makes the client authenticate with private_key_jwt:
	// the provider verifies assertions against the registered certificate,
	// as Microsoft does, and account() writes client_key = KeyFile and, if
	// set, client_certificate = CertFile; x5t is expected only then.
	Cert              *x509.Certificate
	KeyFile, CertFile string
	// SecretCmd makes account() write client_secret_cmd = SecretCmd
	// instead of client_secret.
	SecretCmd string
}

// fakeKV is one auth_uri_fields pair.
type fakeKV struct{ Key, Value string }

type fakeCode struct {
	client, challenge, redirect string
	used                        bool
}

// fakeRequest is one request the provider received.
type fakeRequest struct {
	Path     string // "/authorize", "/token", "/device" or "/revoke"
	Grant    string // grant_type of a token request
	ClientID string
	Form     url.Values
	Auth     string // client authentication seen: "basic", "post", "jwt" or "none"
	At       time.Time
	Status   int  // status answered; 0 while still being handled
	Active   bool // /introspect: whether the token was declared active
}

// fakeFault replaces the provider's answer to one token request.
type fakeFault struct {
	grant       string // "" matches any grant type
	status      int
	contentType string
	body        string
}

type fakeHold struct {
	grant string
	ch    chan struct{}
	delay time.Duration // instead of ch: answer after delay, even to nobody
}

// Recognisable prefixes of everything secret the provider issues.
const (
	prefixAccess  = "pzAT-"
	prefixRefresh = "pzRT-"
	prefixCode    = "pzCODE-"
	prefixSecret  = "pzSECRET-"
	prefixDevice  = "pzDEV-"
)

// The parameters of RFC 7523 client authentication.
const (
	assertion     = "client_assertion"
	assertionType = "client_assertion_type"
)

// grantDevice is RFC 8628's grant type.
const grantDevice = "urn:ietf:params:oauth:grant-type:device_code"

// newProvider starts a fake provider that lives as long as the test. Create
// it before startServer so that it outlives the pizauth server.
func newFakeProvider(t *testing.T) *fakeProvider {
	t.Helper()
	p := &fakeProvider{
		t:         t,
		quit:      make(chan struct{}),
		clients:   map[string]fakeClient{},
		codes:     map[string]*fakeCode{},
		refreshes: map[string]string{},
		issued:    map[string][]string{},
		redirects: map[string]string{},
		expiresIn: 3600,
		tokenType: "Bearer",
		rotate:    true,

		devices:     map[string]*fakeDevice{},
		devScripts:  map[string][]string{},
		userCodes:   map[string]string{},
		jtis:        map[string]bool{},
		devInterval: 1,
		devExpires:  600,
		devComplete: true,

		expiries:         map[string]time.Time{},
		owners:           map[string]string{},
		IntrospectID:     "resource-server",
		IntrospectSecret: e2eRandom(prefixSecret),
	}
	p.secrets = append(p.secrets, p.IntrospectSecret)
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", p.handleAuthorize)
	mux.HandleFunc("/token", p.handleToken)
	mux.HandleFunc("/device", p.handleDevice)
	mux.HandleFunc("/revoke", p.handleRevoke)
	mux.HandleFunc("/introspect", p.handleIntrospect)
	p.srv = httptest.NewServer(mux)
	p.URL = p.srv.URL
	t.Cleanup(func() {
		close(p.quit)
		p.srv.Close()
	})
	return p
}

func e2eRandom(prefix string) string {
	b := make([]byte, 24)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// addClient registers a client and returns it with its secret filled in.
func (p *fakeProvider) addClient(c fakeClient) fakeClient {
	if c.ID == "" {
		c.ID = e2eRandom("client-")
	}
	if c.Secret == "" && !c.Public && c.Cert == nil {
		c.Secret = e2eRandom(prefixSecret)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients[c.ID] = c
	if c.Secret != "" {
		p.secrets = append(p.secrets, c.Secret)
	}
	return c
}

// account returns an `account "name" { ... }` block for client c; extra is
// inserted verbatim before the closing brace.
func (p *fakeProvider) account(name string, c fakeClient, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "account %s {\n", confQuote(name))
	if c.CC {
		b.WriteString("    grant_type = \"client_credentials\";\n")
	} else if c.Device {
		fmt.Fprintf(&b, "    device_auth_uri = %s;\n", confQuote(p.URL+"/device"))
	} else {
		authURI := p.URL + "/authorize"
		if c.AuthQuery != "" {
			authURI += "?" + c.AuthQuery
		}
		fmt.Fprintf(&b, "    auth_uri = %s;\n", confQuote(authURI))
	}
	fmt.Fprintf(&b, "    token_uri = %s;\n", confQuote(p.URL+"/token"))
	if c.Basic {
		b.WriteString("    token_endpoint_auth_method = \"client_secret_basic\";\n")
	}
	if c.Cert != nil {
		fmt.Fprintf(&b, "    token_endpoint_auth_method = \"private_key_jwt\";\n    client_key = %s;\n", confQuote(c.KeyFile))
		if c.CertFile != "" {
			fmt.Fprintf(&b, "    client_certificate = %s;\n", confQuote(c.CertFile))
		}
	}
	if c.Revoke {
		fmt.Fprintf(&b, "    revoke_uri = %s;\n", confQuote(p.URL+"/revoke"))
	}
	fmt.Fprintf(&b, "    client_id = %s;\n", confQuote(c.ID))
	if c.SecretCmd != "" {
		fmt.Fprintf(&b, "    client_secret_cmd = %s;\n", confQuote(c.SecretCmd))
	} else if c.Secret != "" {
		fmt.Fprintf(&b, "    client_secret = %s;\n", confQuote(c.Secret))
	}
	if c.Scopes != nil {
		q := make([]string, len(c.Scopes))
		for i, s := range c.Scopes {
			q[i] = confQuote(s)
		}
		fmt.Fprintf(&b, "    scopes = [%s];\n", strings.Join(q, ", "))
	}
	if c.RedirectURI != "" {
		fmt.Fprintf(&b, "    redirect_uri = %s;\n", confQuote(c.RedirectURI))
	}
	fields := c.Fields
	if c.LegacyLoginHint && len(fields) > 0 {
		fmt.Fprintf(&b, "    login_hint = %s;\n", confQuote(fields[0].Value))
		fields = fields[1:]
	}
	if len(fields) > 0 {
		q := make([]string, len(fields))
		for i, f := range fields {
			q[i] = confQuote(f.Key) + ": " + confQuote(f.Value)
		}
		fmt.Fprintf(&b, "    auth_uri_fields = {%s};\n", strings.Join(q, ", "))
	}
	if extra != "" {
		b.WriteString("    " + extra + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// problem records a request pizauth should never have sent.
func (p *fakeProvider) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.mu.Lock()
	p.problems = append(p.problems, msg)
	tolerate := p.tolerate
	p.mu.Unlock()
	if !tolerate {
		p.t.Errorf("fake provider: %s", msg)
	}
}

func (p *fakeProvider) record(r fakeRequest) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, r)
	return len(p.reqs) - 1
}

func (p *fakeProvider) setStatus(i, status int) {
	p.mu.Lock()
	p.reqs[i].Status = status
	p.mu.Unlock()
}

// handleAuthorize plays the user's browser session at the provider: it
// validates the authorisation URL and redirects back to pizauth.
func (p *fakeProvider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	// The order of the parameters is part of SPEC §5, so parse by hand.
	var keys []string
	vals := url.Values{}
	var probs []string
	for _, part := range strings.Split(r.URL.RawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		uk, err1 := url.QueryUnescape(k)
		uv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			probs = append(probs, fmt.Sprintf("badly escaped query part %q", part))
		}
		keys = append(keys, uk)
		vals.Add(uk, uv)
	}
	idx := p.record(fakeRequest{Path: "/authorize", ClientID: vals.Get("client_id"), Form: vals, At: time.Now()})
	fail := func(probs []string) {
		p.problem("bad authorisation URL %s:\n  %s", r.URL, strings.Join(probs, "\n  "))
		p.setStatus(idx, http.StatusBadRequest)
		http.Error(w, "bad authorisation request", http.StatusBadRequest)
	}
	if r.Method != http.MethodGet {
		fail([]string{"method " + r.Method})
		return
	}
	p.mu.Lock()
	c, ok := p.clients[vals.Get("client_id")]
	p.mu.Unlock()
	if !ok {
		fail(append(probs, fmt.Sprintf("unknown client_id %q", vals.Get("client_id"))))
		return
	}
	if c.Secret != "" && (strings.Contains(r.URL.RawQuery, c.Secret) || strings.Contains(r.URL.RawQuery, url.QueryEscape(c.Secret))) {
		probs = append(probs, "the client secret is in the authorisation URL")
	}
	if vals.Has("client_secret") {
		probs = append(probs, "client_secret parameter in the authorisation URL")
	}

	var want []string
	if c.AuthQuery != "" {
		for _, part := range strings.Split(c.AuthQuery, "&") {
			k, _, _ := strings.Cut(part, "=")
			want = append(want, k)
		}
		pre, _ := url.ParseQuery(c.AuthQuery)
		for k, vs := range pre {
			if !slices.Equal(vals[k], vs) {
				probs = append(probs, fmt.Sprintf("auth_uri's own parameter %s=%q became %q", k, vs, vals[k]))
			}
		}
	}
	want = append(want, "access_type", "code_challenge", "code_challenge_method",
		"client_id", "redirect_uri", "response_type", "state")
	if len(c.Scopes) > 0 {
		want = append(want, "scope")
	}
	for _, f := range c.Fields {
		want = append(want, f.Key)
	}
	if !slices.Equal(keys, want) {
		probs = append(probs, fmt.Sprintf("parameters in order %v, want %v", keys, want))
	}
	one := func(k string) string {
		if len(vals[k]) != 1 {
			probs = append(probs, fmt.Sprintf("parameter %s given %d times", k, len(vals[k])))
			return ""
		}
		return vals[k][0]
	}
	for k, v := range map[string]string{"access_type": "offline", "code_challenge_method": "S256", "response_type": "code"} {
		if got := one(k); got != v {
			probs = append(probs, fmt.Sprintf("%s=%q, want %q", k, got, v))
		}
	}
	challenge := one("code_challenge")
	if b, err := base64.RawURLEncoding.DecodeString(challenge); err != nil || len(b) != sha256.Size {
		probs = append(probs, fmt.Sprintf("code_challenge %q is not unpadded base64url of a SHA-256 digest", challenge))
	}
	state := one("state")
	if b, err := base64.RawURLEncoding.DecodeString(state); err != nil || len(b) != 32 {
		probs = append(probs, fmt.Sprintf("state %q is not unpadded base64url of 32 bytes", state))
	}
	if len(c.Scopes) > 0 {
		if got, w := one("scope"), strings.Join(c.Scopes, " "); got != w {
			probs = append(probs, fmt.Sprintf("scope=%q, want %q", got, w))
		}
	}
	fieldVals := map[string][]string{}
	for _, f := range c.Fields {
		fieldVals[f.Key] = append(fieldVals[f.Key], f.Value)
	}
	for k, vs := range fieldVals {
		if !slices.Equal(vals[k], vs) {
			probs = append(probs, fmt.Sprintf("auth_uri_fields %s=%q, want %q", k, vals[k], vs))
		}
	}
	redirect := one("redirect_uri")
	base := c.RedirectURI
	if base == "" {
		base = "http://localhost/"
	}
	bu, _ := url.Parse(base)
	ru, err := url.Parse(redirect)
	if err != nil {
		probs = append(probs, fmt.Sprintf("redirect_uri %q does not parse", redirect))
	} else {
		port, perr := strconv.Atoi(ru.Port())
		exp := *bu
		exp.Host = net.JoinHostPort(bu.Hostname(), ru.Port())
		if perr != nil || port <= 0 || port > 65535 || redirect != exp.String() {
			probs = append(probs, fmt.Sprintf("redirect_uri %q, want %s with pizauth's listener port", redirect, base))
		}
	}
	if len(probs) > 0 {
		fail(probs)
		return
	}

	p.mu.Lock()
	p.redirects[c.ID] = redirect
	deny := p.denials > 0
	back := url.Values{"state": {state}}
	if deny {
		p.denials--
		back.Set("error", "access_denied")
		back.Set("error_description", "The user denied access")
	} else {
		code := e2eRandom(prefixCode)
		p.codes[code] = &fakeCode{client: c.ID, challenge: challenge, redirect: redirect}
		p.secrets = append(p.secrets, code)
		back.Set("code", code)
	}
	p.reqs[idx].Status = http.StatusFound
	p.mu.Unlock()
	sep := "?"
	if strings.Contains(redirect, "?") {
		sep = "&"
	}
	w.Header().Set("Location", redirect+sep+back.Encode())
	w.WriteHeader(http.StatusFound)
}

// handleToken is the token endpoint of SPEC §7.
func (p *fakeProvider) handleToken(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	form, ferr := url.ParseQuery(string(body))
	idx := p.record(fakeRequest{Path: "/token", Grant: form.Get("grant_type"), ClientID: form.Get("client_id"), Form: form, At: time.Now()})
	answer := func(status int, ct, body string) {
		p.setStatus(idx, status)
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
	var probs []string
	reject := func() {
		p.problem("bad token request (form %v):\n  %s", form, strings.Join(probs, "\n  "))
		answer(http.StatusBadRequest, "application/json", `{"error":"invalid_request","error_description":"rejected by the e2e provider"}`)
	}
	if v := form.Get("code_verifier"); v != "" {
		p.mu.Lock()
		p.secrets = append(p.secrets, v)
		p.mu.Unlock()
	}
	// Which parameters are allowed depends on the grant, checked below.
	probs = append(probs, checkForm(r, form, ferr)...)
	if len(probs) > 0 {
		reject()
		return
	}

	clientID, auth, aprobs := p.checkClient(r, form)
	probs = append(probs, aprobs...)
	p.setAuth(idx, auth)

	grant := form.Get("grant_type")
	var allowed []string
	var refreshOld string
	switch grant {
	case "authorization_code":
		allowed = []string{"grant_type", "code", "client_id", "code_verifier", "redirect_uri", "client_secret", assertion, assertionType}
		code := form.Get("code")
		p.mu.Lock()
		fc := p.codes[code]
		reused := fc != nil && fc.used
		if fc != nil {
			fc.used = true
		}
		p.mu.Unlock()
		switch {
		case fc == nil:
			probs = append(probs, "unknown code")
		case reused:
			probs = append(probs, "code used a second time")
		default:
			if fc.client != clientID {
				probs = append(probs, "code issued to another client")
			}
			sum := sha256.Sum256([]byte(form.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != fc.challenge {
				probs = append(probs, "code_verifier does not match code_challenge (S256)")
			}
			if b, err := base64.RawURLEncoding.DecodeString(form.Get("code_verifier")); err != nil || len(b) != 64 {
				probs = append(probs, "code_verifier is not unpadded base64url of 64 bytes")
			}
			if form.Get("redirect_uri") != fc.redirect {
				probs = append(probs, fmt.Sprintf("redirect_uri %q differs from the authorisation request's %q", form.Get("redirect_uri"), fc.redirect))
			}
		}
	case "refresh_token":
		allowed = []string{"grant_type", "refresh_token", "client_id", "client_secret", assertion, assertionType}
		refreshOld = form.Get("refresh_token")
		p.mu.Lock()
		owner, ok := p.refreshes[refreshOld]
		p.mu.Unlock()
		if !ok {
			probs = append(probs, "unknown or already rotated refresh token")
		} else if owner != clientID {
			probs = append(probs, "refresh token of another client")
		}
	case grantDevice:
		allowed = []string{"grant_type", "device_code", "client_id", "client_secret", assertion, assertionType}
		p.mu.Lock()
		d := p.devices[form.Get("device_code")]
		now := time.Now()
		switch {
		case d == nil:
			probs = append(probs, "unknown device_code")
		case d.client != clientID:
			probs = append(probs, "device_code of another client")
		case d.done:
			probs = append(probs, "device_code polled after the authorisation ended")
		case now.Sub(d.lastPoll) < d.interval-50*time.Millisecond:
			// RFC 8628 §3.5: the client waits interval seconds between polls.
			probs = append(probs, fmt.Sprintf("polled %v after the previous request; the interval is %v", now.Sub(d.lastPoll).Round(time.Millisecond), d.interval))
		}
		p.mu.Unlock()
	case "client_credentials":
		allowed = []string{"grant_type", "scope", "client_id", "client_secret", assertion, assertionType}
		p.mu.Lock()
		c := p.clients[clientID]
		p.mu.Unlock()
		if !c.CC {
			probs = append(probs, "client credentials asked for a client not registered for them")
		}
		if want := strings.Join(c.Scopes, " "); form.Get("scope") != want || (want == "") == form.Has("scope") {
			probs = append(probs, fmt.Sprintf("scope %q, want %q", form.Get("scope"), want))
		}
	default:
		probs = append(probs, fmt.Sprintf("grant_type %q", grant))
	}
	for k := range form {
		if !slices.Contains(allowed, k) {
			probs = append(probs, "unexpected parameter "+k)
		}
	}
	if len(probs) > 0 {
		reject()
		return
	}
	if grant == grantDevice {
		p.mu.Lock()
		d := p.devices[form.Get("device_code")]
		d.lastPoll = time.Now()
		answer1 := "authorization_pending"
		if sc := p.devScripts[clientID]; len(sc) > 0 {
			answer1 = sc[0]
			p.devScripts[clientID] = sc[1:]
		}
		switch answer1 {
		case "ok":
			d.done = true
		case "slow_down":
			d.interval += 5 * time.Second
		case "access_denied", "expired_token":
			d.done = true
		}
		p.mu.Unlock()
		if answer1 != "ok" {
			answer(http.StatusBadRequest, "application/json", fmt.Sprintf(`{"error":%q}`, answer1))
			return
		}
	}

	p.mu.Lock()
	var hold *fakeHold
	for i, h := range p.holds {
		if h.grant == "" || h.grant == grant {
			hold = h
			p.holds = slices.Delete(p.holds, i, i+1)
			break
		}
	}
	p.mu.Unlock()
	if hold != nil && hold.delay > 0 {
		time.Sleep(hold.delay)
	} else if hold != nil {
		select {
		case <-hold.ch:
		case <-p.quit:
		case <-r.Context().Done():
			p.setStatus(idx, -1)
			return
		}
	}

	p.mu.Lock()
	var fault *fakeFault
	for i, f := range p.faults {
		if f.grant == "" || f.grant == grant {
			fault = &f
			p.faults = slices.Delete(p.faults, i, i+1)
			break
		}
	}
	if fault != nil {
		p.mu.Unlock()
		answer(fault.status, fault.contentType, fault.body)
		return
	}
	resp := map[string]any{"token_type": p.tokenType}
	access := e2eRandom(prefixAccess)
	resp["access_token"] = access
	p.issued[clientID] = append(p.issued[clientID], access)
	p.secrets = append(p.secrets, access)
	p.owners[access] = clientID
	if p.expiresIn != nil {
		resp["expires_in"] = p.expiresIn
		if secs, err := strconv.Atoi(fmt.Sprint(p.expiresIn)); err == nil {
			p.expiries[access] = time.Now().Add(time.Duration(secs) * time.Second)
		}
	}
	newRefresh := (grant == "authorization_code" || grant == grantDevice) && !p.noRefresh || grant == "refresh_token" && p.rotate
	if newRefresh {
		rt := e2eRandom(prefixRefresh)
		p.refreshes[rt] = clientID
		p.secrets = append(p.secrets, rt)
		resp["refresh_token"] = rt
		if refreshOld != "" {
			delete(p.refreshes, refreshOld)
		}
	}
	p.mu.Unlock()
	b, _ := json.Marshal(resp)
	answer(http.StatusOK, "application/json", string(b))
}

// checkClient checks a request's client authentication (RFC 6749 §2.3.1)
// against the registered client, for every endpoint alike: HTTP Basic with
// both parts form-urlencoded for Basic clients, the body otherwise, no
// secret at all for public clients, never the secret both ways, and for
// private_key_jwt clients an assertion checked as a real provider checks
// it. auth is what was seen: "basic", "post", "jwt" or "none".
func (p *fakeProvider) checkClient(r *http.Request, form url.Values) (clientID, auth string, probs []string) {
	clientID = form.Get("client_id")
	user, pass, basic := r.BasicAuth()
	if basic {
		// Undo the form-urlencoding RFC 6749 §2.3.1 requires.
		u, err1 := url.QueryUnescape(user)
		pw, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			probs = append(probs, "HTTP Basic credentials are not form-urlencoded")
		}
		user, pass = u, pw
		if clientID == "" {
			clientID = user
		}
	}
	switch {
	case basic:
		auth = "basic"
	case form.Has("client_assertion"):
		auth = "jwt"
	case form.Has("client_secret"):
		auth = "post"
	default:
		auth = "none"
	}
	if basic && form.Has("client_secret") {
		probs = append(probs, "client_secret in the body as well as in HTTP Basic")
	}
	p.mu.Lock()
	c, known := p.clients[clientID]
	p.mu.Unlock()
	switch {
	case !known:
		probs = append(probs, fmt.Sprintf("unknown client_id %q", clientID))
	case c.Cert != nil:
		if basic || form.Has("client_secret") {
			probs = append(probs, "a client secret sent by a private_key_jwt client")
		}
		if form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			probs = append(probs, fmt.Sprintf("client_assertion_type %q", form.Get("client_assertion_type")))
		}
		jti, aprobs := verifyAssertion(form.Get("client_assertion"), c.Cert, c.CertFile != "", c.ID, p.URL+"/token", time.Now())
		probs = append(probs, aprobs...)
		p.mu.Lock()
		if p.jtis[jti] {
			probs = append(probs, "client_assertion replayed: its jti was seen before")
		}
		p.jtis[jti] = true
		p.secrets = append(p.secrets, form.Get("client_assertion"))
		p.mu.Unlock()
	case form.Has("client_assertion"), form.Has("client_assertion_type"):
		probs = append(probs, "client_assertion from a client without a registered certificate")
	case c.Basic:
		if !basic || user != c.ID || pass != c.Secret {
			probs = append(probs, "HTTP Basic client authentication missing or wrong")
		}
	default:
		if basic {
			probs = append(probs, "unexpected HTTP Basic authentication")
		}
		if form.Get("client_id") != c.ID {
			probs = append(probs, "client_id missing from the body")
		}
		if c.Secret == "" && form.Has("client_secret") {
			probs = append(probs, "client_secret sent for a public client")
		}
		if c.Secret != "" && form.Get("client_secret") != c.Secret {
			probs = append(probs, "wrong or missing client_secret")
		}
	}
	return clientID, auth, probs
}

func (p *fakeProvider) setAuth(i int, auth string) {
	p.mu.Lock()
	p.reqs[i].Auth = auth
	p.mu.Unlock()
}

// checkForm applies the checks every POST endpoint shares: method, content
// type, a form body, no query string, no repeated parameter, and only the
// allowed parameters (any, when none are given).
func checkForm(r *http.Request, form url.Values, ferr error, allowed ...string) []string {
	var probs []string
	if r.Method != http.MethodPost {
		probs = append(probs, "method "+r.Method)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		probs = append(probs, fmt.Sprintf("Content-Type %q", r.Header.Get("Content-Type")))
	}
	if ferr != nil {
		probs = append(probs, "body is not a form: "+ferr.Error())
	}
	if r.URL.RawQuery != "" {
		probs = append(probs, "request has a query string: "+r.URL.RawQuery)
	}
	for k, vs := range form {
		if len(vs) != 1 {
			probs = append(probs, fmt.Sprintf("%s given %d times", k, len(vs)))
		}
		if allowed != nil && !slices.Contains(allowed, k) {
			probs = append(probs, "unexpected parameter "+k)
		}
	}
	return probs
}

// handleDevice is an RFC 8628 §3.1 device authorisation endpoint.
func (p *fakeProvider) handleDevice(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	form, ferr := url.ParseQuery(string(body))
	idx := p.record(fakeRequest{Path: "/device", ClientID: form.Get("client_id"), Form: form, At: time.Now()})
	answer := func(status int, ct, body string) {
		p.setStatus(idx, status)
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
	probs := checkForm(r, form, ferr, "client_id", "client_secret", assertion, assertionType, "scope")
	clientID, auth, aprobs := p.checkClient(r, form)
	probs = append(probs, aprobs...)
	p.setAuth(idx, auth)
	p.mu.Lock()
	c := p.clients[clientID]
	p.mu.Unlock()
	if want := strings.Join(c.Scopes, " "); form.Get("scope") != want {
		probs = append(probs, fmt.Sprintf("scope=%q, want %q", form.Get("scope"), want))
	}
	if len(probs) > 0 {
		p.problem("bad device authorisation request (form %v):\n  %s", form, strings.Join(probs, "\n  "))
		answer(http.StatusBadRequest, "application/json", `{"error":"invalid_request"}`)
		return
	}

	p.mu.Lock()
	var hold *fakeHold
	if len(p.devHolds) > 0 {
		hold = p.devHolds[0]
		p.devHolds = p.devHolds[1:]
	}
	p.mu.Unlock()
	if hold != nil && hold.delay > 0 {
		time.Sleep(hold.delay)
	} else if hold != nil {
		select {
		case <-hold.ch:
		case <-p.quit:
		case <-r.Context().Done():
			p.setStatus(idx, -1)
			return
		}
	}

	p.mu.Lock()
	if len(p.devFaults) > 0 {
		f := p.devFaults[0]
		p.devFaults = p.devFaults[1:]
		p.mu.Unlock()
		answer(f.status, f.contentType, f.body)
		return
	}
	dc := e2eRandom(prefixDevice)
	uc := strings.ToUpper(e2eRandomBytes(3) + "-" + e2eRandomBytes(3))
	// The interval the provider enforces is the one it sent, in whichever
	// form it sent it; RFC 8628's 5 s when omitted.
	interval := 5 * time.Second
	switch v := p.devInterval.(type) {
	case int:
		interval = time.Duration(v) * time.Second
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			interval = time.Duration(n) * time.Second
		}
	}
	p.devices[dc] = &fakeDevice{client: clientID, userCode: uc, interval: interval, lastPoll: time.Now()}
	p.userCodes[clientID] = uc
	p.secrets = append(p.secrets, dc)
	verify := p.URL + "/activate"
	resp := map[string]any{"device_code": dc, "user_code": uc}
	if p.devLegacy {
		resp["verification_url"] = verify
	} else {
		resp["verification_uri"] = verify
	}
	if p.devComplete {
		resp["verification_uri_complete"] = verify + "?user_code=" + url.QueryEscape(uc)
	}
	if p.devExpires != nil {
		resp["expires_in"] = p.devExpires
	}
	if p.devInterval != nil {
		resp["interval"] = p.devInterval
	}
	p.mu.Unlock()
	b, _ := json.Marshal(resp)
	answer(http.StatusOK, "application/json", string(b))
}

// handleRevoke is an RFC 7009 revocation endpoint. It answers 200 even for
// a token it does not know, as §2.2 says, but then the test fails: pizauth
// only ever revokes tokens it was given.
func (p *fakeProvider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	form, ferr := url.ParseQuery(string(body))
	idx := p.record(fakeRequest{Path: "/revoke", ClientID: form.Get("client_id"), Form: form, At: time.Now()})
	answer := func(status int, ct, body string) {
		p.setStatus(idx, status)
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
	probs := checkForm(r, form, ferr, "client_id", "client_secret", assertion, assertionType, "token", "token_type_hint")
	clientID, auth, aprobs := p.checkClient(r, form)
	probs = append(probs, aprobs...)
	p.setAuth(idx, auth)
	tok, hint := form.Get("token"), form.Get("token_type_hint")
	p.mu.Lock()
	switch hint {
	case "refresh_token":
		if owner, ok := p.refreshes[tok]; !ok || owner != clientID {
			probs = append(probs, "token is not a live refresh token of this client")
		}
	case "access_token":
		if !slices.Contains(p.issued[clientID], tok) {
			probs = append(probs, "token is not an access token issued to this client")
		}
	default:
		probs = append(probs, fmt.Sprintf("token_type_hint %q", hint))
	}
	p.mu.Unlock()
	if len(probs) > 0 {
		p.problem("bad revocation request (hint %q):\n  %s", hint, strings.Join(probs, "\n  "))
		answer(http.StatusBadRequest, "application/json", `{"error":"invalid_request"}`)
		return
	}
	p.mu.Lock()
	if len(p.revFaults) > 0 {
		f := p.revFaults[0]
		p.revFaults = p.revFaults[1:]
		p.mu.Unlock()
		answer(f.status, f.contentType, f.body)
		return
	}
	delete(p.refreshes, tok)
	p.mu.Unlock()
	answer(http.StatusOK, "application/json", "")
}

// handleIntrospect is an RFC 7662 introspection endpoint, for a resource
// server (the test's Dovecot) that authenticates with IntrospectID and
// IntrospectSecret in the body or with HTTP Basic. A token is active only if
// the provider issued it and it has not expired; refresh tokens are never
// active, since no server should accept one as a login.
func (p *fakeProvider) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	form, ferr := url.ParseQuery(string(body))
	probs := checkForm(r, form, ferr, "token", "token_type_hint", "client_id", "client_secret")
	id, secret, basic := r.BasicAuth()
	if !basic || id == "" {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	idx := p.record(fakeRequest{Path: "/introspect", ClientID: id, Form: form, At: time.Now()})
	w.Header().Set("Content-Type", "application/json")
	if id != p.IntrospectID || secret != p.IntrospectSecret {
		p.setStatus(idx, http.StatusUnauthorized)
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"invalid_client"}`)
		return
	}
	if form.Get("token") == "" {
		probs = append(probs, "no token")
	}
	if len(probs) > 0 {
		p.problem("bad introspection request:\n  %s", strings.Join(probs, "\n  "))
		p.setStatus(idx, http.StatusBadRequest)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_request"}`)
		return
	}
	tok := form.Get("token")
	p.mu.Lock()
	owner, issued := p.owners[tok]
	exp, expires := p.expiries[tok]
	active := issued && (!expires || time.Now().Before(exp))
	resp := map[string]any{"active": active}
	if active {
		c := p.clients[owner]
		resp["client_id"] = owner
		resp["username"] = c.User
		resp["token_type"] = "Bearer"
		resp["scope"] = strings.Join(c.Scopes, " ")
		if expires {
			resp["exp"] = exp.Unix()
		}
	}
	p.reqs[idx].Status = http.StatusOK
	p.reqs[idx].Active = active
	p.mu.Unlock()
	json.NewEncoder(w).Encode(resp)
}

// expire makes an access token the provider issued expire now, as if its
// lifetime had run out.
func (p *fakeProvider) expire(token string) {
	p.mu.Lock()
	p.expiries[token] = time.Now().Add(-time.Second)
	p.mu.Unlock()
}

// introspections returns the introspection requests that answered, oldest
// first.
func (p *fakeProvider) introspections() []fakeRequest {
	var out []fakeRequest
	for _, r := range p.requests("/introspect", "") {
		if r.Status == http.StatusOK {
			out = append(out, r)
		}
	}
	return out
}

// deviceScript sets how the token endpoint answers the client's next device
// code polls: "authorization_pending", "slow_down", "access_denied",
// "expired_token" or "ok" (a token). Once the script is used up, polls are
// answered authorization_pending, as when the user does nothing.
func (p *fakeProvider) deviceScript(clientID string, answers ...string) {
	p.mu.Lock()
	p.devScripts[clientID] = append(p.devScripts[clientID], answers...)
	p.mu.Unlock()
}

// setDevice sets the interval and expires_in of future device authorisation
// answers (an int, a string, or nil to omit it) and whether they include
// verification_uri_complete and use the verification_url spelling.
func (p *fakeProvider) setDevice(interval, expiresIn any, complete, legacy bool) {
	p.mu.Lock()
	p.devInterval, p.devExpires, p.devComplete, p.devLegacy = interval, expiresIn, complete, legacy
	p.mu.Unlock()
}

// failNextDevice makes the next device authorisation request get this
// answer instead of a user code.
func (p *fakeProvider) failNextDevice(status int, contentType, body string) {
	p.mu.Lock()
	p.devFaults = append(p.devFaults, fakeFault{status: status, contentType: contentType, body: body})
	p.mu.Unlock()
}

// holdDevice makes the next device authorisation request hang until release
// is called (or the test ends).
func (p *fakeProvider) holdDevice() (release func()) {
	h := &fakeHold{ch: make(chan struct{})}
	p.mu.Lock()
	p.devHolds = append(p.devHolds, h)
	p.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(h.ch) }) }
}

// failNextRevoke makes the next revocation request get this answer.
func (p *fakeProvider) failNextRevoke(status int, contentType, body string) {
	p.mu.Lock()
	p.revFaults = append(p.revFaults, fakeFault{status: status, contentType: contentType, body: body})
	p.mu.Unlock()
}

// userCode is the user code of the client's latest device authorisation.
func (p *fakeProvider) userCode(clientID string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.userCodes[clientID]
}

// refreshTokens returns the client's live refresh tokens.
func (p *fakeProvider) refreshTokens(clientID string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for rt, owner := range p.refreshes {
		if owner == clientID {
			out = append(out, rt)
		}
	}
	return out
}

// clientRequests returns the requests received at path from one client,
// oldest first.
func (p *fakeProvider) clientRequests(path, clientID string) []fakeRequest {
	var out []fakeRequest
	for _, r := range p.requests(path, "") {
		if r.ClientID == clientID {
			out = append(out, r)
		}
	}
	return out
}

// failNext makes the next n token requests of the given grant type ("" for
// any) fail with this answer instead of a token.
func (p *fakeProvider) failNext(grant string, n, status int, contentType, body string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range n {
		p.faults = append(p.faults, fakeFault{grant: grant, status: status, contentType: contentType, body: body})
	}
}

// failNextJSON is failNext with a JSON body.
func (p *fakeProvider) failNextJSON(grant string, n, status int, body string) {
	p.failNext(grant, n, status, "application/json", body)
}

// hold makes the next token request of the given grant type ("" for any)
// hang until release is called (or the test ends); then it is answered as
// usual.
func (p *fakeProvider) hold(grant string) (release func()) {
	h := &fakeHold{grant: grant, ch: make(chan struct{})}
	p.mu.Lock()
	p.holds = append(p.holds, h)
	p.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(h.ch) }) }
}

// delayNext makes the next token request of the given grant type ("" for
// any) wait d and then be carried out, a refresh token rotated, even if
// pizauth has hung up meanwhile: a real provider does not notice.
func (p *fakeProvider) delayNext(grant string, d time.Duration) {
	p.mu.Lock()
	p.holds = append(p.holds, &fakeHold{grant: grant, delay: d})
	p.mu.Unlock()
}

// denyNext makes the next authorisation redirect back with
// error=access_denied instead of a code.
func (p *fakeProvider) denyNext() {
	p.mu.Lock()
	p.denials++
	p.mu.Unlock()
}

// setExpiresIn sets the expires_in of future token responses: an int, a
// string, or nil to omit it.
func (p *fakeProvider) setExpiresIn(v any) {
	p.mu.Lock()
	p.expiresIn = v
	p.mu.Unlock()
}

func (p *fakeProvider) setTokenType(s string) {
	p.mu.Lock()
	p.tokenType = s
	p.mu.Unlock()
}

// setNoRefreshToken makes code exchanges return no refresh token.
func (p *fakeProvider) setNoRefreshToken(v bool) {
	p.mu.Lock()
	p.noRefresh = v
	p.mu.Unlock()
}

// requests returns the requests received at path ("/authorize" or "/token")
// with the given grant type ("" for any), oldest first.
func (p *fakeProvider) requests(path, grant string) []fakeRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []fakeRequest
	for _, r := range p.reqs {
		if r.Path == path && (grant == "" || r.Grant == grant) {
			out = append(out, r)
		}
	}
	return out
}

// count is the number of token requests with the given grant type ("" for any).
func (p *fakeProvider) count(grant string) int { return len(p.requests("/token", grant)) }

// tokens returns the access tokens issued to a client, oldest first.
func (p *fakeProvider) tokens(clientID string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.issued[clientID])
}

// lastToken is the access token most recently issued to a client.
func (p *fakeProvider) lastToken(clientID string) string {
	ts := p.tokens(clientID)
	if len(ts) == 0 {
		return ""
	}
	return ts[len(ts)-1]
}

// redirectURI is the redirect_uri of the client's latest authorisation request.
func (p *fakeProvider) redirectURI(clientID string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.redirects[clientID]
}

// secretValues returns every secret the provider has issued or received:
// client secrets, codes, code verifiers, access and refresh tokens.
func (p *fakeProvider) secretValues() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.secrets)
}

// TestE2EProviderSelfCheck makes sure the fake provider accepts a request
// built exactly as SPEC §5 and §7 describe and rejects the mistakes the
// end-to-end tests rely on it to catch.
func TestE2EProviderSelfCheck(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	p.mu.Lock()
	p.tolerate = true
	p.mu.Unlock()
	c := p.addClient(fakeClient{ID: "self", Scopes: []string{"a b", "c"}, AuthQuery: "tenant=t1",
		Fields: []fakeKV{{"login_hint", "u@example.com"}}})
	verifier := e2eRandomBytes(64)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	state := e2eRandomBytes(32)
	redirect := "http://localhost:4711/"
	u := p.URL + "/authorize?tenant=t1&access_type=offline&code_challenge=" + challenge +
		"&code_challenge_method=S256&client_id=self&redirect_uri=" + url.QueryEscape(redirect) +
		"&response_type=code&state=" + state + "&scope=" + url.QueryEscape("a b c") +
		"&login_hint=" + url.QueryEscape("u@example.com")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, problems %v", resp.StatusCode, p.problems)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host != "localhost:4711" || loc.Query().Get("state") != state {
		t.Fatalf("redirect to %s", loc)
	}
	code := loc.Query().Get("code")
	post := func(form url.Values) (int, map[string]any) {
		resp, err := http.PostForm(p.URL+"/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	exchange := url.Values{"code": {code}, "client_id": {"self"}, "code_verifier": {verifier},
		"redirect_uri": {redirect}, "grant_type": {"authorization_code"}, "client_secret": {c.Secret}}
	st, m := post(exchange)
	if st != 200 || !strings.HasPrefix(fmt.Sprint(m["access_token"]), prefixAccess) {
		t.Fatalf("exchange: %d %v, problems %v", st, m, p.problems)
	}
	if st, _ := post(exchange); st != 400 || len(p.problems) != 1 {
		t.Fatalf("second use of a code: status %d, problems %v", st, p.problems)
	}
	rt := fmt.Sprint(m["refresh_token"])
	refresh := url.Values{"refresh_token": {rt}, "client_id": {"self"}, "grant_type": {"refresh_token"}, "client_secret": {c.Secret}}
	if st, m := post(refresh); st != 200 || m["refresh_token"] == rt {
		t.Fatalf("refresh: %d %v, problems %v", st, m, p.problems)
	}
	if st, _ := post(refresh); st != 400 {
		t.Fatalf("rotated refresh token still accepted: %d", st)
	}
	p.failNextJSON("refresh_token", 1, 400, `{"error":"invalid_grant"}`)
	bad := url.Values{"refresh_token": {"nope"}, "client_id": {"self"}, "grant_type": {"refresh_token"}, "client_secret": {"wrong"}}
	if st, _ := post(bad); st != 400 || len(p.problems) != 3 {
		t.Fatalf("wrong secret: %d, problems %v", st, p.problems)
	}
	if n := p.count("refresh_token"); n != 3 {
		t.Fatalf("%d refresh requests recorded, want 3", n)
	}
	wrongOrder := strings.Replace(u, "tenant=t1&access_type=offline", "access_type=offline&tenant=t1", 1)
	if resp, err := client.Get(wrongOrder); err != nil || resp.StatusCode != 400 {
		t.Fatalf("parameters out of order accepted: %v %v", resp, err)
	}
}

func e2eRandomBytes(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
