package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// End-to-end tests of the client credentials grant (RFC 6749 §4.4): tokens
// for app-only mailboxes, which nobody ever logs in to. The fake provider
// grants them only to clients registered with CC, checks the client
// authentication and the scope of every request, and never issues a
// refresh token with them.

// TestE2EClientCredentials: the first show gets a token at once (post and
// Basic client authentication alike), with no notification; the token is
// renewed before it expires by a new request, which rotates it; status,
// dump and restore treat it like any other token, and revoke forgets it
// and revokes it at the provider.
func TestE2EClientCredentials(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	notes, events := filepath.Join(dir, "notify"), filepath.Join(dir, "events")
	post := p.addClient(fakeClient{CC: true, Scopes: []string{"https://outlook.office365.com/.default"}, Revoke: true})
	basic := p.addClient(fakeClient{CC: true, Basic: true})
	conf := e2eConf(map[string]string{
		"auth_notify_cmd": hookAppend(notes, "$PIZAUTH_ACCOUNT"),
		"token_event_cmd": hookAppend(events, "$PIZAUTH_ACCOUNT $PIZAUTH_EVENT"),
	}, p.account("app", post, ""), p.account("basic", basic, ""))
	s := startSrv(t, conf)

	tok := s.showToken(t, "app")
	if tok != p.lastToken(post.ID) {
		t.Fatalf("first show printed %q, not the token the provider issued", tok)
	}
	if got := s.showToken(t, "basic"); got != p.lastToken(basic.ID) {
		t.Fatalf("first show with client_secret_basic printed %q", got)
	}
	reqs := p.requests("/token", "client_credentials")
	if len(reqs) != 2 || reqs[0].Auth != "post" || reqs[1].Auth != "basic" {
		t.Fatalf("client credentials requests %+v; want one post, one basic", reqs)
	}
	if got := s.showToken(t, "app"); got != tok {
		t.Errorf("second show printed another token")
	}
	if n := p.count("client_credentials"); n != 2 {
		t.Errorf("%d token requests after three shows, want 2", n)
	}
	if st := s.state(t, "app"); !e2eActiveLine.MatchString(st) {
		t.Errorf("status: %q", st)
	}
	if js, _ := s.statusJSON(t); js.Accounts[0].Name != "app" || js.Accounts[0].State != "active" {
		t.Errorf("status -j: %+v", js.Accounts)
	}

	// Renewal: a token that lives 3 s is replaced about 1.5 s in.
	p.setExpiresIn(3)
	s.mustRun(t, "refresh", "app")
	tok2 := s.waitToken(t, "app", tok)
	tok3 := s.waitToken(t, "app", tok2)
	if p.count("refresh_token") != 0 || tok3 != p.lastToken(post.ID) {
		t.Errorf("renewal used %d refresh grants; show printed %q, last issued %q", p.count("refresh_token"), tok3, p.lastToken(post.ID))
	}
	p.setExpiresIn(3600)
	s.waitFor(t, func() bool {
		return slices.Contains(e2eLines(events), "app token_refreshed")
	}, "token_refreshed")
	if got := e2eLines(events); !slices.Contains(got, "app token_new") || slices.Contains(got, "app token_invalidated") {
		t.Errorf("token events %q", got)
	}

	// Dump and restore carry it; revoke forgets it at both ends.
	cur := s.waitToken(t, "app", tok2)
	d := s.dump(t)
	s.mustRun(t, "revoke", "app")
	s.waitFor(t, func() bool { return len(p.clientRequests("/revoke", post.ID)) == 1 }, "the revocation")
	if st := s.state(t, "app"); st != "No access token" {
		t.Errorf("after revoke: %q", st)
	}
	s.restore(t, d)
	if got := s.showToken(t, "app"); got != strings.TrimSpace(cur) && got != p.lastToken(post.ID) {
		t.Errorf("after restore, show printed %q", got)
	}
	if got := e2eRead(notes); got != "" {
		t.Errorf("auth_notify_cmd ran for an account nobody logs in to: %q", got)
	}
}

// TestE2EClientCredentialsFailures: a 503 is transient (the token is kept,
// the renewal retried, error_notify_cmd told once); invalid_client on the first request or on a
// renewal is permanent: the account is Empty, error_notify_cmd says why,
// and show reports it without asking again before refresh_retry. A reload
// that changes the secret drops the token.
func TestE2EClientCredentialsFailures(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	errs := filepath.Join(t.TempDir(), "errors")
	c := p.addClient(fakeClient{CC: true})
	acct := p.account("app", c, "")
	s := startSrv(t, e2eConf(map[string]string{
		"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG"),
		"refresh_retry":    "2s",
	}, acct))

	p.failNextJSON("client_credentials", 1, 401, `{"error":"invalid_client","error_description":"bad secret"}`)
	_, got, code := s.run("show", "app")
	want := `ERROR - Token request failed: token endpoint returned error "invalid_client" (HTTP 401): bad secret; check client_id, client_secret and token_endpoint_auth_method; pizauth will try again in `
	if code != 1 || !strings.HasPrefix(got, want) {
		t.Fatalf("first show with invalid_client: exit %d, %q; want %q…", code, got, want)
	}
	if again := s.showErr(t, "app"); !strings.HasPrefix(again, want) {
		t.Errorf("second show: %q", again)
	}
	if n := p.count("client_credentials"); n != 1 {
		t.Errorf("%d requests: show asked again within refresh_retry", n)
	}
	s.waitFor(t, func() bool { return len(e2eLines(errs)) == 1 }, "error_notify_cmd")
	if st := s.state(t, "app"); st != "No access token" {
		t.Errorf("status after invalid_client: %q", st)
	}
	tok := s.waitToken(t, "app", "")

	// A 503 on renewal keeps the token; the retry gets a new one.
	p.failNextJSON("client_credentials", 1, 503, `{"error":"temporarily_unavailable"}`)
	s.mustRun(t, "refresh", "app")
	s.waitFor(t, func() bool { return p.count("client_credentials") == 3 }, "the failed renewal")
	if got := s.showToken(t, "app"); got != tok {
		t.Errorf("a transient failure replaced the token")
	}
	s.waitToken(t, "app", tok)
	s.waitFor(t, func() bool { return len(e2eLines(errs)) == 2 }, "error_notify_cmd for the outage")
	if l := e2eLines(errs); !strings.HasPrefix(l[1], "app Token refresh failed, pizauth keeps the login") {
		t.Errorf("error_notify_cmd after a transient failure: %q", l)
	}

	// invalid_client on renewal drops it and says why.
	p.failNextJSON("client_credentials", 1, 401, `{"error":"invalid_client"}`)
	s.mustRun(t, "refresh", "app")
	s.waitFor(t, func() bool { return s.state(t, "app") == "No access token" }, "the permanent failure")
	s.waitFor(t, func() bool { return len(e2eLines(errs)) == 3 }, "error_notify_cmd")
	if l := e2eLines(errs)[2]; !strings.HasPrefix(l, `app Token refresh failed: token endpoint returned error "invalid_client"`) {
		t.Errorf("error_notify_cmd: %q", l)
	}
	tok = s.waitToken(t, "app", "")

	// A new secret (the old one revoked at the provider) means a new
	// token, obtained with the new secret.
	c2 := p.addClient(fakeClient{CC: true, ID: c.ID})
	s.writeConf(t, e2eConf(map[string]string{"refresh_retry": "2s"}, p.account("app", c2, "")))
	s.mustRun(t, "reload")
	if st := s.state(t, "app"); st != "No access token" {
		t.Errorf("after a reload that changed the secret: %q", st)
	}
	if got := s.showToken(t, "app"); got == tok || got != p.lastToken(c2.ID) {
		t.Errorf("after a reload with a new secret, show printed %q", got)
	}
}
