package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// End-to-end tests of what goes beyond the original: the device authorisation grant
// (RFC 8628), the choice of client authentication method, revocation at the
// provider (RFC 7009) and `pizauth status -j`. They use the harness of
// e2e_test.go and the fake provider of provider_test.go, whose device and
// revocation endpoints check every request pizauth sends.

var e2eDeviceMsg = regexp.MustCompile(`^ERROR - Token unavailable until authorised with URL (\S+) and code (\S+)\n$`)

// e2eDeviceWaiting is what `show` says before the device authorisation
// endpoint has answered.
const e2eDeviceWaiting = "ERROR - Token unavailable until authorised (waiting for the device authorisation endpoint: try again in a few seconds)\n"

// showErr runs `pizauth show acct`, which must fail, and returns stderr.
func (s *srv) showErr(t *testing.T, acct string) string {
	t.Helper()
	out, errOut, code := s.run("show", acct)
	if code != 1 || out != "" {
		t.Fatalf("pizauth show %s: exit %d, stdout %q, stderr %q; want exit 1 and a message", acct, code, out, errOut)
	}
	return errOut
}

// deviceCode waits until `pizauth show acct` names the verification URI and
// user code of a device authorisation, and returns them.
func (s *srv) deviceCode(t *testing.T, acct string) (uri, code string) {
	t.Helper()
	s.waitFor(t, func() bool {
		m := e2eDeviceMsg.FindStringSubmatch(s.showErr(t, acct))
		if m != nil {
			uri, code = m[1], m[2]
		}
		return m != nil
	}, "pizauth show "+acct+" to give a device code")
	return uri, code
}

// devicePolls are the device code polls a client has sent, oldest first.
func (p *fakeProvider) devicePolls(clientID string) []fakeRequest {
	var out []fakeRequest
	for _, r := range p.clientRequests("/token", clientID) {
		if r.Grant == grantDevice {
			out = append(out, r)
		}
	}
	return out
}

// e2eNoSecrets fails the test if text contains anything secret the
// provider has issued or received, or the prefix of one.
func e2eNoSecrets(t *testing.T, p *fakeProvider, what, text string) {
	t.Helper()
	for _, secret := range p.secretValues() {
		if strings.Contains(text, secret) {
			t.Errorf("%s contains a secret starting %q", what, secret[:min(len(secret), 12)])
		}
	}
	for _, prefix := range []string{prefixAccess, prefixRefresh, prefixCode, prefixSecret, prefixDevice} {
		if strings.Contains(text, prefix) {
			t.Errorf("%s contains %q: %q", what, prefix, text)
		}
	}
}

// TestE2EDeviceFlow takes a device-flow account from the first `show`
// through a slow device endpoint, authorization_pending and slow_down to a
// token, checking what the user is told and what the provider receives.
func TestE2EDeviceFlow(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	c := p.addClient(fakeClient{Device: true, Scopes: []string{"mail", "offline_access"}})
	dir := t.TempDir()
	notes, events := filepath.Join(dir, "notify"), filepath.Join(dir, "events")
	s := startSrv(t, e2eConf(map[string]string{
		"auth_notify_cmd":      hookAppend(notes, "$PIZAUTH_ACCOUNT|$PIZAUTH_URL|$PIZAUTH_USER_CODE"),
		"auth_notify_interval": "1h",
		"token_event_cmd":      hookAppend(events, "$PIZAUTH_ACCOUNT $PIZAUTH_EVENT"),
	}, p.account("dev", c, "")))

	release := p.holdDevice()
	defer release()
	if got := s.showErr(t, "dev"); got != e2eDeviceWaiting {
		t.Errorf("show before the device endpoint answered: %q, want %q", got, e2eDeviceWaiting)
	}
	if st := s.state(t, "dev"); st != "Access token pending authentication" {
		t.Errorf("status before the device endpoint answered: %q", st)
	}
	if got := s.showErr(t, "dev"); got != e2eDeviceWaiting {
		t.Errorf("second show before the device endpoint answered: %q", got)
	}
	p.deviceScript(c.ID, "authorization_pending", "slow_down", "ok")
	release()

	uri, code := s.deviceCode(t, "dev")
	if uri != p.URL+"/activate" || code != p.userCode(c.ID) {
		t.Errorf("show named %s and code %s; the provider sent %s/activate and %s", uri, code, p.URL, p.userCode(c.ID))
	}
	if n := len(p.clientRequests("/device", c.ID)); n != 1 {
		t.Errorf("%d device authorisation requests, want 1 (shows while waiting must not start more)", n)
	}
	s.waitFor(t, func() bool { return len(e2eLines(notes)) > 0 }, "auth_notify_cmd")
	if got, want := e2eLines(notes)[0], "dev|"+uri+"?user_code="+code+"|"+code; got != want {
		t.Errorf("auth_notify_cmd saw %q, want %q (the complete URI and the user code)", got, want)
	}
	if st := s.state(t, "dev"); !strings.HasPrefix(st, "Access token pending authentication (code "+code+" at "+uri+")") {
		t.Errorf("status while pending: %q; want the code and URI", st)
	}

	tok := s.waitToken(t, "dev", "")
	if tok != p.lastToken(c.ID) {
		t.Errorf("show printed a token the provider did not issue last")
	}
	s.waitFor(t, func() bool { return slices.Contains(e2eLines(events), "dev token_new") }, "token_new")

	dev := p.clientRequests("/device", c.ID)
	polls := p.devicePolls(c.ID)
	if len(polls) != 3 {
		t.Fatalf("%d device code polls, want 3 (pending, slow_down, ok)", len(polls))
	}
	for i, r := range polls {
		if r.Auth != "post" || !strings.HasPrefix(r.Form.Get("device_code"), prefixDevice) {
			t.Errorf("poll %d: client authentication %q, device_code %q", i, r.Auth, r.Form.Get("device_code"))
		}
	}
	if dev[0].Auth != "post" || dev[0].Form.Get("scope") != "mail offline_access" {
		t.Errorf("device authorisation request: authentication %q, scope %q", dev[0].Auth, dev[0].Form.Get("scope"))
	}
	// The provider itself rejects a poll that comes too early; the upper
	// bounds make sure slow_down added 5 s and no more.
	gaps := []time.Duration{polls[0].At.Sub(dev[0].At), polls[1].At.Sub(polls[0].At), polls[2].At.Sub(polls[1].At)}
	if gaps[1] > 5*time.Second || gaps[2] < 6*time.Second-50*time.Millisecond || gaps[2] > 10*time.Second {
		t.Errorf("gaps between polls %v; want about 1 s, 1 s, then 6 s after slow_down", gaps)
	}
	if st := s.state(t, "dev"); !e2eActiveLine.MatchString(st) {
		t.Errorf("status after approval: %q", st)
	}
	e2eNoSecrets(t, p, "the server log", s.logs())
}

// TestE2EDeviceFirstShowWaits: the first shows of a device-flow account
// wait (up to 5 s, here 1 s) for the device authorisation endpoint, so a
// person at a terminal gets the URL and the code on the first try; shows
// that arrive together share one device request and one answer; later
// shows answer at once. TestE2EDeviceFlow covers an endpoint slower than
// the wait.
func TestE2EDeviceFirstShowWaits(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	c := p.addClient(fakeClient{Device: true})
	s := startSrv(t, e2eConf(nil, p.account("dev", c, "")))
	release := p.holdDevice()
	defer release()
	time.AfterFunc(time.Second, release)
	answers := make([]string, 4)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, answers[i], _ = s.run("show", "dev")
		}()
	}
	wg.Wait()
	m := e2eDeviceMsg.FindStringSubmatch(answers[0])
	if m == nil || m[1] != p.URL+"/activate" || m[2] != p.userCode(c.ID) {
		t.Fatalf("first show: %q; want the URL and the code", answers[0])
	}
	for i, a := range answers[1:] {
		if a != answers[0] {
			t.Errorf("concurrent show %d: %q, want %q", i+2, a, answers[0])
		}
	}
	if n := len(p.clientRequests("/device", c.ID)); n != 1 {
		t.Errorf("%d device authorisation requests for concurrent shows, want 1", n)
	}
	if got := s.showErr(t, "dev"); got != answers[0] {
		t.Errorf("later show: %q", got)
	}
}

// TestE2EDeviceVariants: the verification_url spelling, no complete URI
// (so PIZAUTH_URL is the plain one), a string interval, and HTTP Basic on
// both the device endpoint and the polls.
func TestE2EDeviceVariants(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	p.setDevice("1", "600", false, true)
	c := p.addClient(fakeClient{Device: true, Basic: true})
	notes := filepath.Join(t.TempDir(), "notify")
	s := startSrv(t, e2eConf(map[string]string{
		"auth_notify_cmd": hookAppend(notes, "$PIZAUTH_URL|$PIZAUTH_USER_CODE"),
	}, p.account("dev", c, "")))
	p.deviceScript(c.ID, "ok")
	if got := s.showErr(t, "dev"); got != e2eDeviceWaiting && !e2eDeviceMsg.MatchString(got) {
		t.Errorf("first show: %q", got)
	}
	s.waitToken(t, "dev", "")
	if got := e2eLines(notes); len(got) == 0 || got[0] != p.URL+"/activate|"+p.userCode(c.ID) {
		t.Errorf("auth_notify_cmd saw %q, want the verification URL and the code", got)
	}
	reqs := append(p.clientRequests("/device", c.ID), p.devicePolls(c.ID)...)
	if len(reqs) != 2 {
		t.Fatalf("%d device requests and polls, want 2", len(reqs))
	}
	for _, r := range reqs {
		if r.Auth != "basic" {
			t.Errorf("%s request authenticated with %q, want HTTP Basic", r.Path, r.Auth)
		}
	}
}

// TestE2EDeviceEnds: denial, expired_token and the request's own expires_in
// running out each return the account to Empty, run error_notify_cmd with a
// message saying what to do, and stop the polling.
func TestE2EDeviceEnds(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	short := newFakeProvider(t)
	short.setDevice(1, 2, true, false)
	denied := p.addClient(fakeClient{Device: true})
	expired := p.addClient(fakeClient{Device: true})
	lapsed := short.addClient(fakeClient{Device: true})
	errs := filepath.Join(t.TempDir(), "errors")
	s := startSrv(t, e2eConf(map[string]string{"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG")},
		p.account("denied", denied, ""), p.account("expired", expired, ""), short.account("lapsed", lapsed, "")))
	p.deviceScript(denied.ID, "authorization_pending", "access_denied")
	p.deviceScript(expired.ID, "expired_token")
	for _, a := range []string{"denied", "expired", "lapsed"} {
		s.showErr(t, a)
	}
	msgs := map[string]string{}
	s.waitFor(t, func() bool {
		for _, l := range e2eLines(errs) {
			a, msg, _ := strings.Cut(l, " ")
			msgs[a] = msg
		}
		return len(msgs) == 3
	}, "error_notify_cmd for all three accounts")
	want := map[string][]string{
		"denied":  {"denied", "access_denied", "pizauth show denied"},
		"expired": {"expired", "expired_token", "pizauth show expired"},
		"lapsed":  {"expired before it was approved", "pizauth show lapsed"},
	}
	for a, parts := range want {
		for _, part := range parts {
			if !strings.Contains(msgs[a], part) {
				t.Errorf("%s: error_notify_cmd message %q lacks %q", a, msgs[a], part)
			}
		}
		if st := s.state(t, a); st != "No access token" {
			t.Errorf("%s: status %q after the device authorisation ended", a, st)
		}
	}
	e2eNoSecrets(t, p, "error_notify_cmd messages", e2eRead(errs))
	e2eNoSecrets(t, short, "error_notify_cmd messages", e2eRead(errs))
	before := map[string]int{"denied": len(p.devicePolls(denied.ID)), "expired": len(p.devicePolls(expired.ID)), "lapsed": len(short.devicePolls(lapsed.ID))}
	if before["denied"] != 2 || before["expired"] != 1 {
		t.Errorf("polls: %v; want 2 for denied and 1 for expired", before)
	}
	time.Sleep(1500 * time.Millisecond)
	after := map[string]int{"denied": len(p.devicePolls(denied.ID)), "expired": len(p.devicePolls(expired.ID)), "lapsed": len(short.devicePolls(lapsed.ID))}
	if !equalMaps(before, after) {
		t.Errorf("polls went on after the authorisation ended: %v, then %v", before, after)
	}
	if n := strings.Count(e2eRead(errs), "\n"); n != 3 {
		t.Errorf("%d error notifications, want 3:\n%s", n, e2eRead(errs))
	}
	// A new show starts afresh.
	p.deviceScript(denied.ID, "ok")
	s.showErr(t, "denied")
	s.waitToken(t, "denied", "")
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestE2EDevicePollingStops: a revoke, or a reload that changes the
// account, abandons a poll in flight (its token is never used) and sends no
// further polls; a reload that leaves the account alone keeps polling.
func TestE2EDevicePollingStops(t *testing.T) {
	t.Parallel()
	pr, pl, pk := newFakeProvider(t), newFakeProvider(t), newFakeProvider(t)
	cr := pr.addClient(fakeClient{Device: true})
	cl := pl.addClient(fakeClient{Device: true})
	ck := pk.addClient(fakeClient{Device: true})
	events := filepath.Join(t.TempDir(), "events")
	over := map[string]string{"token_event_cmd": hookAppend(events, "$PIZAUTH_ACCOUNT $PIZAUTH_EVENT")}
	conf := func(scope string) string {
		return e2eConf(over, pr.account("rv", cr, ""), pl.account("rl", cl, scope), pk.account("keep", ck, ""))
	}
	s := startSrv(t, conf(""))
	// The first polls succeed, but the provider holds the answers until the
	// account has been revoked or reloaded.
	var releases []func()
	for _, p := range []*fakeProvider{pr, pl, pk} {
		releases = append(releases, p.hold(grantDevice))
	}
	defer func() {
		for _, r := range releases {
			r()
		}
	}()
	pr.deviceScript(cr.ID, "ok")
	pl.deviceScript(cl.ID, "ok")
	pk.deviceScript(ck.ID, "ok")
	for _, a := range []string{"rv", "rl", "keep"} {
		s.showErr(t, a)
	}
	held := func(p *fakeProvider, id string) bool { return len(p.devicePolls(id)) == 1 }
	s.waitFor(t, func() bool { return held(pr, cr.ID) && held(pl, cl.ID) && held(pk, ck.ID) }, "a poll from each account")

	s.mustRun(t, "revoke", "rv")
	s.writeConf(t, conf(`scopes = ["other"];`))
	s.mustRun(t, "reload")
	for _, a := range []string{"rv", "rl"} {
		if st := s.state(t, a); st != "No access token" {
			t.Errorf("%s: status %q at once after the change", a, st)
		}
	}
	cancelled := func(p *fakeProvider, id string) bool {
		polls := p.devicePolls(id)
		return len(polls) == 1 && polls[0].Status == -1
	}
	s.waitFor(t, func() bool { return cancelled(pr, cr.ID) && cancelled(pl, cl.ID) }, "the polls in flight to be abandoned")
	for _, r := range releases {
		r()
	}
	tok := s.waitToken(t, "keep", "")
	if tok != pk.lastToken(ck.ID) {
		t.Errorf("keep: the unchanged account's poll did not deliver its token")
	}
	// Two more intervals: a poll still scheduled would have happened.
	time.Sleep(2200 * time.Millisecond)
	for _, x := range []struct {
		name string
		p    *fakeProvider
		id   string
	}{{"rv", pr, cr.ID}, {"rl", pl, cl.ID}} {
		if n := len(x.p.devicePolls(x.id)); n != 1 {
			t.Errorf("%s: %d polls, want only the abandoned one", x.name, n)
		}
		if st := s.state(t, x.name); st != "No access token" {
			t.Errorf("%s: status %q; a token from an abandoned poll was used", x.name, st)
		}
	}
	if got := e2eLines(events); !slices.Equal(got, []string{"keep token_new"}) {
		t.Errorf("token events %q; want only keep's token_new", got)
	}
}

// TestE2EClientAuthMethods: client_secret_basic, client_secret_post (the
// default, and written out) and a public client, each checked by the
// provider for the code exchange and a refresh.
func TestE2EClientAuthMethods(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	clients := []struct {
		name  string
		c     fakeClient
		extra string
		auth  string
	}{
		{"basic", p.addClient(fakeClient{Basic: true, ID: "id with space&co:x"}), "", "basic"},
		{"post", p.addClient(fakeClient{}), "", "post"},
		{"postx", p.addClient(fakeClient{}), `token_endpoint_auth_method = "client_secret_post";`, "post"},
		{"public", p.addClient(fakeClient{Public: true}), "", "none"},
	}
	var accts []string
	for _, x := range clients {
		accts = append(accts, p.account(x.name, x.c, x.extra))
	}
	s := startSrv(t, e2eConf(nil, accts...))
	for _, x := range clients {
		tok := s.authorise(t, x.name)
		s.mustRun(t, "refresh", x.name)
		s.waitToken(t, x.name, tok)
		var grants []string
		for _, r := range p.clientRequests("/token", x.c.ID) {
			grants = append(grants, r.Grant)
			if r.Auth != x.auth || r.Status != http.StatusOK {
				t.Errorf("%s: %s request authenticated with %q (status %d), want %q", x.name, r.Grant, r.Auth, r.Status, x.auth)
			}
		}
		if !slices.Equal(grants, []string{"authorization_code", "refresh_token"}) {
			t.Errorf("%s: token requests %q", x.name, grants)
		}
	}
}

// TestE2ERevokeAtProvider: `pizauth revoke` drops the token at once and then
// sends the refresh and access tokens to revoke_uri with their hints and
// the account's client authentication; without revoke_uri nothing is sent;
// a failing endpoint is reported without secrets.
func TestE2ERevokeAtProvider(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	bad := newFakeProvider(t)
	cp := p.addClient(fakeClient{Revoke: true})
	cb := p.addClient(fakeClient{Revoke: true, Basic: true})
	cn := p.addClient(fakeClient{})
	cf := bad.addClient(fakeClient{Revoke: true})
	dir := t.TempDir()
	errs, events := filepath.Join(dir, "errors"), filepath.Join(dir, "events")
	s := startSrv(t, e2eConf(map[string]string{
		"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG"),
		"token_event_cmd":  hookAppend(events, "$PIZAUTH_ACCOUNT $PIZAUTH_EVENT"),
	}, p.account("post", cp, ""), p.account("basic", cb, ""), p.account("none", cn, ""), bad.account("fail", cf, "")))

	for _, x := range []struct {
		name string
		c    fakeClient
		auth string
	}{{"post", cp, "post"}, {"basic", cb, "basic"}} {
		tok := s.authorise(t, x.name)
		rts := p.refreshTokens(x.c.ID)
		if len(rts) != 1 {
			t.Fatalf("%s: %d live refresh tokens", x.name, len(rts))
		}
		s.mustRun(t, "revoke", x.name)
		if st := s.state(t, x.name); st != "No access token" {
			t.Errorf("%s: status %q at once after revoke", x.name, st)
		}
		s.waitFor(t, func() bool {
			r := p.clientRequests("/revoke", x.c.ID)
			return len(r) == 2 && r[1].Status != 0
		}, x.name+": two revocation requests")
		got := p.clientRequests("/revoke", x.c.ID)
		want := [][2]string{{rts[0], "refresh_token"}, {tok, "access_token"}}
		for i, r := range got {
			if r.Form.Get("token") != want[i][0] || r.Form.Get("token_type_hint") != want[i][1] || r.Auth != x.auth || r.Status != 200 {
				t.Errorf("%s: revocation request %d: hint %q, authentication %q, status %d, right token %v; want hint %q, %q",
					x.name, i, r.Form.Get("token_type_hint"), r.Auth, r.Status, r.Form.Get("token") == want[i][0], want[i][1], x.auth)
			}
		}
		if n := len(p.refreshTokens(x.c.ID)); n != 0 {
			t.Errorf("%s: the refresh token is still live at the provider", x.name)
		}
	}

	s.authorise(t, "none")
	s.mustRun(t, "revoke", "none")
	s.pendingURL(t, "none")

	tokP := s.authorise(t, "post")
	tokF := s.authorise(t, "fail")
	bad.failNextRevoke(500, "text/html", "<html><body>Oops "+tokF+"</body></html>")
	bad.failNextRevoke(400, "application/json", `{"error":"invalid_req`)
	s.mustRun(t, "revoke", "fail")
	if st := s.state(t, "fail"); st != "No access token" {
		t.Errorf("fail: status %q at once after revoke", st)
	}
	s.waitFor(t, func() bool { return len(e2eLines(errs)) == 2 }, "error_notify_cmd for both failed revocations")
	msg := e2eRead(errs)
	for _, part := range []string{
		"fail Revoking the refresh token at the provider failed: revocation endpoint returned HTTP 500 (text/html); it is forgotten locally",
		"fail Revoking the access token at the provider failed: revocation endpoint returned HTTP 400 (application/json); it is forgotten locally",
	} {
		if !strings.Contains(msg, part) {
			t.Errorf("error_notify_cmd messages %q lack %q", msg, part)
		}
	}
	if got := s.showToken(t, "post"); got != tokP {
		t.Errorf("post: its token changed when another account's revocation failed")
	}
	e2eNoSecrets(t, bad, "error_notify_cmd messages", msg)
	e2eNoSecrets(t, p, "error_notify_cmd messages", msg)
	if n := len(p.clientRequests("/revoke", cn.ID)); n != 0 {
		t.Errorf("none: %d revocation requests without revoke_uri", n)
	}
	for _, a := range []string{"post", "basic", "none", "fail"} {
		l := e2eLines(events)
		i := slices.Index(l, a+" token_new")
		if i < 0 || !slices.Contains(l[i:], a+" token_revoked") {
			t.Errorf("%s: token events %q lack token_new then token_revoked", a, l)
		}
	}
}

// e2eStatusJSON is the `pizauth status -j` object.
type e2eStatusJSON struct {
	Version  int `json:"status_format_version"`
	Accounts []struct {
		Name             string  `json:"name"`
		State            string  `json:"state"`
		Obtained         *string `json:"obtained"`
		Expires          *string `json:"expires"`
		LastRefresh      *string `json:"last_refresh_attempt"`
		LastNotification *string `json:"last_notification"`
		UserCode         *string `json:"user_code"`
		VerificationURI  *string `json:"verification_uri"`
	} `json:"accounts"`
}

// statusJSON runs `pizauth status -j` and parses it strictly.
func (s *srv) statusJSON(t *testing.T) (e2eStatusJSON, string) {
	t.Helper()
	out := s.mustRun(t, "status", "-j")
	dec := json.NewDecoder(bytes.NewReader([]byte(out)))
	dec.DisallowUnknownFields()
	var st e2eStatusJSON
	if err := dec.Decode(&st); err != nil || dec.More() {
		t.Fatalf("pizauth status -j printed %q: %v", out, err)
	}
	return st, out
}

// TestE2ERevokeAlreadyRevoked: Google answers 400 invalid_token for a
// token it no longer knows, such as the access token once its refresh
// token is revoked. That is a revoked token: logged at info level, no
// error_notify_cmd.
func TestE2ERevokeAlreadyRevoked(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	errs := filepath.Join(t.TempDir(), "errors")
	s := startSrv(t, e2eConf(map[string]string{"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG")},
		p.account("acct", p.addClient(fakeClient{Revoke: true}), "")))
	s.authorise(t, "acct")
	p.failNextRevoke(200, "application/json", "")
	p.failNextRevoke(400, "application/json; charset=utf-8", `{"error":"invalid_token","error_description":"Token expired or revoked"}`)
	s.mustRun(t, "revoke", "acct")
	want := "INFO Account 'acct': the provider no longer knows the access token: it was already revoked"
	s.waitFor(t, func() bool { return strings.Contains(s.logs(), want) }, "the log to say the access token was already revoked")
	s.mustRun(t, "status") // the notification, if any, would have started by now
	if got := e2eRead(errs); got != "" {
		t.Errorf("error_notify_cmd ran for an already revoked token: %q", got)
	}
	if strings.Contains(s.logs(), " ERROR ") {
		t.Errorf("an already revoked token logged as an error:\n%s", s.logs())
	}
}

// TestE2EStatusJSONFormat: `status -j` gives the format version and, per
// account in name order, its state, times and any pending user code, and
// never a token.
func TestE2EStatusJSONFormat(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	px := newFakeProvider(t)
	px.setExpiresIn(1)
	px.failNextJSON("refresh_token", 1000, 503, `{"error":"temporarily_unavailable"}`)
	ca, cd, cx := p.addClient(fakeClient{}), p.addClient(fakeClient{Device: true}), px.addClient(fakeClient{})
	s := startSrv(t, e2eConf(map[string]string{"auth_notify_cmd": `"true"`},
		p.account("b-empty", p.addClient(fakeClient{}), ""), p.account("a-active", ca, ""),
		p.account("d-pending", cd, ""), px.account("c-expired", cx, "")))
	before := time.Now().Truncate(time.Second)
	s.authorise(t, "a-active")
	s.authorise(t, "c-expired")
	_, code := s.deviceCode(t, "d-pending")
	var st e2eStatusJSON
	var out string
	s.waitFor(t, func() bool {
		st, out = s.statusJSON(t)
		return len(st.Accounts) == 4 && st.Accounts[2].State == "expired" && st.Accounts[2].LastRefresh != nil
	}, "c-expired to be expired with a refresh attempt")
	after := time.Now()
	if st.Version != 1 {
		t.Errorf("status_format_version %d, want 1", st.Version)
	}
	var names, states []string
	for _, a := range st.Accounts {
		names, states = append(names, a.Name), append(states, a.State)
	}
	if !slices.Equal(names, []string{"a-active", "b-empty", "c-expired", "d-pending"}) ||
		!slices.Equal(states, []string{"active", "empty", "expired", "pending"}) {
		t.Fatalf("accounts %q in states %q", names, states)
	}
	parse := func(what string, v *string) time.Time {
		t.Helper()
		if v == nil {
			t.Errorf("%s is null", what)
			return time.Time{}
		}
		tm, err := time.Parse(time.RFC3339, *v)
		if err != nil || tm.Before(before) || tm.After(after.Add(3601*time.Second)) {
			t.Errorf("%s = %q (%v): not an RFC 3339 time in the test's span", what, *v, err)
		}
		return tm
	}
	a, e, x, d := st.Accounts[0], st.Accounts[1], st.Accounts[2], st.Accounts[3]
	if ob, ex := parse("active obtained", a.Obtained), parse("active expires", a.Expires); ex.Sub(ob) != time.Hour {
		t.Errorf("active: obtained %v, expires %v; want an hour apart", ob, ex)
	}
	if a.LastRefresh != nil || a.UserCode != nil || a.LastNotification != nil {
		t.Errorf("active: unexpected fields %+v", a)
	}
	if e.Obtained != nil || e.Expires != nil || e.LastRefresh != nil || e.LastNotification != nil || e.UserCode != nil || e.VerificationURI != nil {
		t.Errorf("empty: fields set %+v", e)
	}
	if ob, ex := parse("expired obtained", x.Obtained), parse("expired expires", x.Expires); ex.Sub(ob) != time.Second || !ex.Before(after) {
		t.Errorf("expired: obtained %v, expires %v", ob, ex)
	}
	parse("expired last_refresh_attempt", x.LastRefresh)
	if d.UserCode == nil || *d.UserCode != code || d.VerificationURI == nil || *d.VerificationURI != p.URL+"/activate" {
		t.Errorf("pending: user_code %v, verification_uri %v; want %s at %s/activate", d.UserCode, d.VerificationURI, code, p.URL)
	}
	parse("pending last_notification", d.LastNotification)
	if d.Obtained != nil || d.Expires != nil {
		t.Errorf("pending: token times set %+v", d)
	}
	e2eNoSecrets(t, p, "status -j", out)
	e2eNoSecrets(t, px, "status -j", out)
}

// TestE2EMalformedDeviceAnswers: broken device authorisation answers are
// reported clearly, leave the account Empty and ready to try again, and
// touch no other account.
func TestE2EMalformedDeviceAnswers(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	errs := filepath.Join(t.TempDir(), "errors")
	cd, ca := p.addClient(fakeClient{Device: true}), p.addClient(fakeClient{})
	s := startSrv(t, e2eConf(map[string]string{"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG")},
		p.account("dev", cd, ""), p.account("other", ca, "")))
	tokA := s.authorise(t, "other")
	faults := []struct {
		name, ct, body, want string
	}{
		{"missing user_code", "application/json",
			`{"device_code":"pzDEV-leak","verification_uri":"https://example.com/d","expires_in":600}`,
			"device authorization endpoint sent an unusable response (HTTP 200): no usable user_code"},
		{"HTML", "text/html", "<html><body>Sign in</body></html>",
			"device authorization endpoint did not send a JSON object (HTTP 200, text/html)"},
		{"truncated JSON", "application/json", `{"device_code":"pzDEV-leak","user_code":"AB`,
			"device authorization endpoint sent invalid or truncated JSON (HTTP 200, application/json)"},
		{"bad verification_uri", "application/json",
			`{"device_code":"pzDEV-leak","user_code":"AB-CD","verification_uri":"javascript:alert(1)","expires_in":600}`,
			"verification_uri must be an http or https URI"},
	}
	for i, f := range faults {
		// The first show waits for the answer and reports the failure;
		// later shows repeat it for refresh_retry, and an explicit
		// refresh asks again at once.
		p.failNextDevice(200, f.ct, f.body)
		cmd := "show"
		if i > 0 {
			cmd = "refresh"
		}
		_, got, code := s.run(cmd, "dev")
		if want := "ERROR - Device authorisation failed: "; code != 1 || !strings.HasPrefix(got, want) || !strings.Contains(got, f.want) {
			t.Errorf("%s: %s said %q; want %q…%q", f.name, cmd, got, want, f.want)
		}
		s.waitFor(t, func() bool { return len(e2eLines(errs)) > i }, f.name+": error_notify_cmd")
		if got := e2eLines(errs)[i]; !strings.HasPrefix(got, "dev Device authorisation failed: ") || !strings.Contains(got, f.want) {
			t.Errorf("%s: error_notify_cmd message %q; want %q", f.name, got, f.want)
		}
		if st := s.state(t, "dev"); st != "No access token" {
			t.Errorf("%s: status %q", f.name, st)
		}
		if got := s.showToken(t, "other"); got != tokA {
			t.Errorf("%s: the other account's token changed", f.name)
		}
	}
	if strings.Contains(e2eRead(errs), "pzDEV-leak") {
		t.Errorf("a device code from a broken answer reached error_notify_cmd")
	}
	if n := len(p.devicePolls(cd.ID)); n != 0 {
		t.Errorf("%d polls after broken device answers", n)
	}
	p.deviceScript(cd.ID, "ok")
	s.showErr(t, "dev")
	s.waitToken(t, "dev", "")
	if got := s.showToken(t, "other"); got != tokA {
		t.Errorf("the other account's token changed")
	}
}
