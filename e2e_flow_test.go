package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests drive the built binary as a user would; see e2e_test.go for
// the harness and provider_test.go for the fake OAuth2 provider. Messages
// are asserted exactly where SPEC.md gives them.

const e2eNotRunning = "pizauth authenticator not running or not responding"

var (
	e2eLineCol       = regexp.MustCompile(`:\d+:\d+: `)
	e2eFingerprintRE = regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`)
	e2eNotifyLine    = regexp.MustCompile(`^Access token pending authentication \(last notification (.+)\)$`)
)

// activeTimes parses acct's `Active access token (obtained T; expires T)`
// status line.
func (s *srv) activeTimes(t *testing.T, acct string) (obtained, expires time.Time) {
	t.Helper()
	st := s.state(t, acct)
	m := e2eActiveLine.FindStringSubmatch(st)
	if m == nil {
		t.Fatalf("status of %s is %q, want `Active access token (obtained <time>; expires <time>)`", acct, st)
	}
	var err1, err2 error
	obtained, err1 = time.Parse(time.RFC1123Z, m[1])
	expires, err2 = time.Parse(time.RFC1123Z, m[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("status times %q and %q are not RFC 1123Z", m[1], m[2])
	}
	return obtained, expires
}

func e2eAbout(got, want time.Duration, slack time.Duration) bool {
	return got >= want-slack && got <= want+slack
}

// TestE2EUsageAndNoServer: wrong usage prints the usage text; every client
// command without a server says so; info works without a server.
func TestE2EUsageAndNoServer(t *testing.T) {
	t.Parallel()
	s := newSrvEnv(t, "")
	usage := []string{
		"pizauth discover [-d] <issuer-url> [<account>]", "pizauth dump", "pizauth info [-j] [-c config]", "pizauth refresh [-u] <account>",
		"pizauth reload", "pizauth restore", "pizauth revoke <account>",
		"pizauth server [-c config] [-d] [-v...]", "pizauth show [-u] <account>",
		"pizauth shutdown", "pizauth status",
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"show", "a", "b"}, {"show", "-x", "a"}, {"discover"}, {"discover", "a", "b", "c"}, {"discover", "-u", "a"}, {"-x"}, {"--helpme"}, {"help", "show"}, {"version", "-j"}} {
		out, errOut, code := s.run(args...)
		if code != 1 || out != "" {
			t.Errorf("pizauth %q: exit %d, stdout %q; want exit 1 and nothing on stdout", args, code, out)
		}
		for _, u := range usage {
			if !strings.Contains(errOut, u) {
				t.Errorf("pizauth %q: usage on stderr lacks %q:\n%s", args, u, errOut)
				break
			}
		}
	}
	for _, args := range [][]string{{"status"}, {"show", "a"}, {"show", "-u", "a"}, {"refresh", "a"}, {"revoke", "a"}, {"reload"}, {"shutdown"}, {"dump"}} {
		_, errOut, code := s.run(args...)
		if code != 1 || !strings.Contains(errOut, e2eNotRunning) {
			t.Errorf("pizauth %q without a server: exit %d, stderr %q; want exit 1 and %q", args, code, errOut, e2eNotRunning)
		}
	}
	inf := s.info(t)
	if inf.InfoFormatVersion != 2 || inf.ServerRunning || inf.ServerInfo != nil {
		t.Errorf("info -j without a server: %+v; want info_format_version 2, server_running false, no server_info", inf)
	}
	if inf.ConfigFile != s.confPath || inf.PizauthVersion == "" || inf.ExecutedAs == "" {
		t.Errorf("info -j: %+v; want config_file %s and a version", inf, s.confPath)
	}
	missing := filepath.Join(s.root, "missing.conf")
	if out := s.mustRun(t, "info", "-c", missing); !strings.Contains(out, "  config file: "+missing+" (does not exist)\n") {
		t.Errorf("pizauth info -c %s does not say that the file does not exist:\n%s", missing, out)
	}
	_, errOut, code := s.run("server", "-d", "-c", missing)
	if code != 1 || !strings.Contains(errOut, "missing.conf") {
		t.Errorf("server with a missing config file: exit %d, stderr %q; want exit 1 and an error naming the file", code, errOut)
	}
}

// TestE2EHelpVersionMissingAccount: help and version, asked for, go to
// stdout and exit 0; a command without its account says just that, naming
// the server's accounts when one runs; -c "" is refused, not the default
// file.
func TestE2EHelpVersionMissingAccount(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := newSrvEnv(t, e2eConf(nil, p.account("work", p.addClient(fakeClient{}), ""), p.account("gmail", p.addClient(fakeClient{}), "")))
	for _, arg := range []string{"help", "-h", "--help"} {
		out, errOut, code := s.run(arg)
		if code != 0 || errOut != "" {
			t.Errorf("pizauth %s: exit %d, stderr %q; want exit 0 and nothing on stderr", arg, code, errOut)
		}
		for _, w := range []string{"pizauth show [-u] <account>              print the account's access token\n",
			"pizauth dump                             write the tokens to stdout", "pizauth(1)", "pizauth.conf(5)"} {
			if !strings.Contains(out, w) {
				t.Errorf("pizauth %s: stdout lacks %q:\n%s", arg, w, out)
			}
		}
	}
	want := "pizauth version " + s.info(t).PizauthVersion + "\n"
	for _, arg := range []string{"version", "-V", "--version"} {
		if out, errOut, code := s.run(arg); code != 0 || errOut != "" || out != want {
			t.Errorf("pizauth %s: exit %d, stdout %q, stderr %q; want exit 0 and %q", arg, code, out, errOut, want)
		}
	}
	check := func(args []string, want string) {
		t.Helper()
		if out, errOut, code := s.run(args...); code != 1 || out != "" || errOut != want {
			t.Errorf("pizauth %q: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, errOut, want)
		}
	}
	for _, cmd := range []string{"show", "refresh", "revoke"} {
		check([]string{cmd}, "ERROR - Missing account name: pizauth "+cmd+" <account>\n")
	}
	check([]string{"info", "-c", ""}, "ERROR - -c needs a configuration file, not an empty name\n")
	check([]string{"server", "-d", "-c", ""}, "ERROR - -c needs a configuration file, not an empty name\n")
	s.start(t)
	check([]string{"show", "-u"}, "ERROR - Missing account name: pizauth show <account>; the server's accounts are 'gmail', 'work'\n")
}

// TestE2EShowAuthorise: the first show prints the URL; following it yields
// the token, which show then prints. The URL is exactly as SPEC §5 orders
// it (the provider checks), including a query already in auth_uri,
// auth_uri_fields, the deprecated login_hint and a public client.
func TestE2EShowAuthorise(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	c := p.addClient(fakeClient{
		Scopes:    []string{"openid", "https://mail.example.com/IMAP", "offline_access"},
		AuthQuery: "tenant=t1",
		Fields:    []fakeKV{{"login_hint", "user@example.com"}, {"prompt", "consent"}},
	})
	legacy := p.addClient(fakeClient{Public: true, LegacyLoginHint: true, Fields: []fakeKV{{"login_hint", "x@example.org"}}})
	s := startSrv(t, e2eConf(nil, p.account("main", c, ""), p.account("legacy", legacy, "")))

	u := s.pendingURL(t, "main")
	if !strings.HasPrefix(u, p.URL+"/authorize?tenant=t1&access_type=offline&") {
		t.Errorf("authorisation URL %s does not start with auth_uri and its own query", u)
	}
	if again := s.pendingURL(t, "main"); again != u {
		t.Errorf("a second show gave a different URL while the first request is pending:\n%s\n%s", u, again)
	}
	if st := s.state(t, "main"); !strings.HasPrefix(st, "Access token pending authentication") {
		t.Errorf("status while pending: %q", st)
	}
	tok := s.authorise(t, "main")
	if tok != p.lastToken(c.ID) {
		t.Errorf("show printed %q, the provider issued %q", tok, p.lastToken(c.ID))
	}
	if got := s.showToken(t, "main"); got != tok {
		t.Errorf("second show printed %q, want %q", got, tok)
	}
	if out, _, code := s.run("show", "-v", "main"); code != 0 || out != tok+"\n" {
		t.Errorf("show -v main: exit %d, stdout %q", code, out)
	}
	inf := s.info(t)
	if inf.ServerInfo == nil || inf.ServerInfo.HTTPSPort != "none" || inf.ServerInfo.PubKey != nil {
		t.Fatalf("info -j server_info %+v; want https_port \"none\" and, as in the original, no https_pub_key", inf.ServerInfo)
	}
	if want := "http://localhost:" + inf.ServerInfo.HTTPPort + "/"; p.redirectURI(c.ID) != want {
		t.Errorf("redirect_uri %q, want %q (the HTTP listener's port)", p.redirectURI(c.ID), want)
	}
	if n := p.count("authorization_code"); n != 1 {
		t.Errorf("%d code exchanges, want 1", n)
	}
	if tok2 := s.authorise(t, "legacy"); tok2 != p.lastToken(legacy.ID) {
		t.Errorf("legacy account: show printed %q, provider issued %q", tok2, p.lastToken(legacy.ID))
	}
	lines := s.statusLines(t)
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "legacy: Active access token (") || !strings.HasPrefix(lines[1], "main: Active access token (") {
		t.Errorf("status %q; want both accounts active, sorted by name", lines)
	}
}

// TestE2ERenewalBeforeExpiry: a token is refreshed refresh_before_expiry
// before it expires and show then prints the new one.
func TestE2ERenewalBeforeExpiry(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	p.setExpiresIn(3)
	c := p.addClient(fakeClient{Scopes: []string{"mail"}})
	events := filepath.Join(t.TempDir(), "events")
	s := startSrv(t, e2eConf(map[string]string{"token_event_cmd": hookAppend(events, "$PIZAUTH_ACCOUNT $PIZAUTH_EVENT")},
		p.account("acct", c, "")))
	tok := s.authorise(t, "acct")
	tok2 := s.waitToken(t, "acct", tok)
	if !slices.Contains(p.tokens(c.ID), tok2) || p.count("refresh_token") < 1 {
		t.Errorf("new token %q did not come from a refresh", tok2)
	}
	s.waitFor(t, func() bool { return len(e2eLines(events)) >= 2 }, "two token events")
	if got := e2eLines(events)[:2]; !slices.Equal(got, []string{"acct token_new", "acct token_refreshed"}) {
		t.Errorf("token events %q; want token_new then token_refreshed", got)
	}
}

// TestE2EShowWithoutURL: show -u and refresh -u omit the URL.
func TestE2EShowWithoutURL(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := startSrv(t, e2eConf(nil, p.account("acct", p.addClient(fakeClient{}), "")))
	const want = "ERROR - Token unavailable until authorised\n"
	for range 2 {
		for _, cmd := range []string{"show", "refresh"} {
			out, errOut, code := s.run(cmd, "-u", "acct")
			if code != 1 || out != "" || errOut != want {
				t.Errorf("%s -u acct: exit %d, stdout %q, stderr %q; want exit 1 and %q", cmd, code, out, errOut, want)
			}
		}
		s.pendingURL(t, "acct")
	}
}

// TestE2EUnknownAccount: commands naming an account not in the config fail.
func TestE2EUnknownAccount(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := startSrv(t, e2eConf(nil, p.account("acct", p.addClient(fakeClient{}), "")))
	for _, args := range [][]string{{"show", "nope"}, {"show", "-u", "nope"}} {
		out, errOut, code := s.run(args...)
		if code != 1 || out != "" || errOut != "ERROR - No account 'nope'\n" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"refresh", "nope"}, {"revoke", "nope"}} {
		_, errOut, code := s.run(args...)
		if code != 1 || !strings.HasPrefix(errOut, "ERROR - ") || !strings.Contains(errOut, "'nope'") {
			t.Errorf("%q: exit %d, stderr %q; want exit 1 and an error naming 'nope'", args, code, errOut)
		}
	}
	if st := s.state(t, "acct"); st != "No access token" {
		t.Errorf("status of acct %q", st)
	}
}

// TestE2ERefreshCommand: refresh on an active account schedules one
// refresh without waiting for it and never starts a second one while the
// first runs; show keeps answering meanwhile. On an empty account refresh
// behaves like show.
func TestE2ERefreshCommand(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	ca, cb := p.addClient(fakeClient{}), p.addClient(fakeClient{})
	s := startSrv(t, e2eConf(nil, p.account("a", ca, ""), p.account("b", cb, "")))
	tok := s.authorise(t, "a")

	release := p.hold("refresh_token")
	defer release()
	if out, errOut, code := s.run("refresh", "a"); code != 0 || errOut != "" {
		t.Fatalf("refresh a: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	s.waitFor(t, func() bool { return p.count("refresh_token") == 1 }, "the refresh request")
	for range 2 {
		s.mustRun(t, "refresh", "a")
	}
	start := time.Now()
	if got := s.showToken(t, "a"); got != tok {
		t.Errorf("show during a refresh printed %q, want the current token %q", got, tok)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("show took %v while a refresh was stuck at the provider", d)
	}
	time.Sleep(300 * time.Millisecond)
	if n := p.count("refresh_token"); n != 1 {
		t.Errorf("%d refresh requests while one was in progress, want 1", n)
	}
	release()
	tok2 := s.waitToken(t, "a", tok)
	if tok2 != p.lastToken(ca.ID) {
		t.Errorf("show printed %q after refresh, provider issued %q", tok2, p.lastToken(ca.ID))
	}

	out, errOut, code := s.run("refresh", "b")
	m := e2eURLMsg.FindStringSubmatch(errOut)
	if code != 1 || out != "" || m == nil {
		t.Fatalf("refresh b (empty): exit %d, stdout %q, stderr %q; want the URL message", code, out, errOut)
	}
	if u := s.pendingURL(t, "b"); u != m[1] {
		t.Errorf("show after refresh started a second request:\n%s\n%s", m[1], u)
	}
}

// TestE2ERefreshWithoutRefreshToken: `pizauth refresh` on a token with no
// refresh token, which only a new login can replace, drops it and starts
// that login, printing the URL and exiting 1, as the manual says.
func TestE2ERefreshWithoutRefreshToken(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	events := filepath.Join(t.TempDir(), "events")
	s := startSrv(t, e2eConf(map[string]string{"token_event_cmd": hookAppend(events, "$PIZAUTH_EVENT")},
		p.account("a", p.addClient(fakeClient{}), "")))
	p.setNoRefreshToken(true)
	s.authorise(t, "a")
	out, errOut, code := s.run("refresh", "a")
	m := e2eURLMsg.FindStringSubmatch(errOut)
	if code != 1 || out != "" || m == nil {
		t.Fatalf("refresh of a token without a refresh token: exit %d, stdout %q, stderr %q; want exit 1 and the URL", code, out, errOut)
	}
	if u := s.pendingURL(t, "a"); u != m[1] {
		t.Errorf("show after refresh offers another URL than refresh printed:\n%s\n%s", u, m[1])
	}
	s.waitFor(t, func() bool { return slices.Equal(e2eLines(events), []string{"token_new", "token_invalidated"}) }, "token_invalidated")
	if n := p.count("refresh_token"); n != 0 {
		t.Errorf("%d refresh requests without a refresh token", n)
	}
	s.authorise(t, "a")
}

// TestE2ESecondTabCannotUndoLogin: once a login's code has arrived, a later
// redirect for the same login carrying error= (a second tab, a reload, the
// back button) gets the "already processing" page and changes nothing: the
// exchange goes on and no error is notified; so it is once the login is
// done, too.
func TestE2ESecondTabCannotUndoLogin(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	errs := filepath.Join(t.TempDir(), "errors")
	s := startSrv(t, e2eConf(map[string]string{"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG")},
		p.account("acct", p.addClient(fakeClient{}), "")))
	release := p.hold("authorization_code")
	defer release()
	callback, r := s.follow(t, s.pendingURL(t, "acct"))
	if r.Status != http.StatusOK || !strings.Contains(r.Body, processingPage) {
		t.Fatalf("the code redirect answered %d %q", r.Status, r.Body)
	}
	s.waitFor(t, func() bool { return p.count("authorization_code") == 1 }, "the code exchange to reach the provider")
	cb, _ := url.Parse(callback)
	cb.RawQuery = url.Values{"state": {cb.Query().Get("state")}, "error": {"access_denied"}}.Encode()
	for _, u := range []string{cb.String(), callback} {
		if r := e2eBrowse(t, http.MethodGet, u); r.Status != http.StatusOK || r.Body != "pizauth is already processing this authentication: you can safely close this page.\n" {
			t.Errorf("a second redirect during the exchange answered %d %q; want the already-processing page", r.Status, r.Body)
		}
	}
	release()
	tok := s.waitToken(t, "acct", "")
	for _, u := range []string{cb.String(), callback} {
		if r := e2eBrowse(t, http.MethodGet, u); r.Status != http.StatusOK || !strings.Contains(r.Body, "already processing") {
			t.Errorf("a redirect after the login answered %d %q; want the already-handled page", r.Status, r.Body)
		}
	}
	if got := s.showToken(t, "acct"); got != tok {
		t.Errorf("show after the late error redirect printed %q, want %q", got, tok)
	}
	if got := e2eRead(errs); got != "" {
		t.Errorf("error_notify_cmd ran: %q", got)
	}
	if n := p.count("authorization_code"); n != 1 {
		t.Errorf("%d code exchanges, want 1", n)
	}
}

// TestE2EStatusAndInfo: status lines, info and info -j with both
// listeners on, file modes, startup_cmd and NOTIFY_SOCKET.
func TestE2EStatusAndInfo(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	cz := p.addClient(fakeClient{})
	ca := p.addClient(fakeClient{RedirectURI: "https://localhost/"})
	cm := p.addClient(fakeClient{})
	started := filepath.Join(t.TempDir(), "started")
	conf := e2eConf(map[string]string{
		"https_listen": `"127.0.0.1:0"`,
		"startup_cmd":  confQuote(fmt.Sprintf(`'%s' status >/dev/null 2>&1; echo "rc=$?" >> '%s'`, e2eBin, started)),
	}, p.account("zeta", cz, ""), p.account("alpha", ca, ""), p.account("mid", cm, ""))
	s := newSrvEnv(t, conf)
	notifyPath := filepath.Join(s.root, "n.sock")
	nl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	s.env = append(s.env, "NOTIFY_SOCKET="+notifyPath)
	s.start(t)

	nl.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	if n, err := nl.Read(buf); err != nil || !slices.Contains(strings.Split(string(buf[:n]), "\n"), "READY=1") {
		t.Errorf("NOTIFY_SOCKET got %q (%v); want READY=1", buf[:n], err)
	}
	s.waitFor(t, func() bool { return e2eRead(started) != "" }, "startup_cmd")
	if got := e2eRead(started); got != "rc=0\n" {
		t.Errorf("startup_cmd ran `pizauth status` with result %q; want it to run once, after the server answers", got)
	}
	if fi, err := os.Stat(filepath.Dir(s.socketPath())); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Errorf("runtime directory has mode %v; want 0700", fi.Mode())
	}
	if fi, err := os.Stat(s.socketPath()); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket has mode %v; want a socket with mode 0600", fi.Mode())
	}

	want := []string{"alpha: No access token", "mid: No access token", "zeta: No access token"}
	if got := s.statusLines(t); !slices.Equal(got, want) {
		t.Errorf("status %q, want %q", got, want)
	}
	before := time.Now()
	s.authorise(t, "zeta")
	s.authorise(t, "alpha")
	obtained, expires := s.activeTimes(t, "zeta")
	if obtained.Before(before.Add(-2*time.Second)) || obtained.After(time.Now().Add(2*time.Second)) {
		t.Errorf("obtained %v, want about now (%v)", obtained, before)
	}
	if d := expires.Sub(obtained); !e2eAbout(d, time.Hour, 5*time.Second) {
		t.Errorf("expires %v after obtained, want about 1h (expires_in 3600)", d)
	}
	if st := s.state(t, "mid"); st != "No access token" {
		t.Errorf("status of mid %q", st)
	}

	out := s.mustRun(t, "info", "-j")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("info -j: %v", err)
	}
	for _, k := range []string{"info_format_version", "pizauth_version", "executed_as", "cache_directory", "config_file", "server_running", "server_info"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("info -j lacks %q: %s", k, out)
		}
	}
	inf := s.info(t)
	si := inf.ServerInfo
	if inf.InfoFormatVersion != 2 || !inf.ServerRunning || si == nil {
		t.Fatalf("info -j %+v", inf)
	}
	if inf.ConfigFile != s.confPath {
		t.Errorf("config_file %q, want %q", inf.ConfigFile, s.confPath)
	}
	if p.redirectURI(cz.ID) != "http://localhost:"+si.HTTPPort+"/" {
		t.Errorf("http_port %q; the HTTP redirect went to %s", si.HTTPPort, p.redirectURI(cz.ID))
	}
	if p.redirectURI(ca.ID) != "https://localhost:"+si.HTTPSPort+"/" {
		t.Errorf("https_port %q; the HTTPS redirect went to %s", si.HTTPSPort, p.redirectURI(ca.ID))
	}
	if !e2eFingerprintRE.MatchString(si.Fingerprint) {
		t.Errorf("https_cert_fingerprint %q is not colon-separated upper-case hex of 32 bytes", si.Fingerprint)
	}
	human := s.mustRun(t, "info")
	for _, w := range []string{si.HTTPPort, si.HTTPSPort, si.Fingerprint, s.confPath} {
		if !strings.Contains(human, w) {
			t.Errorf("pizauth info lacks %q:\n%s", w, human)
		}
	}
}

// TestE2ERevoke: revoke drops the token and any pending request; a stale
// redirect for a dropped request changes nothing.
func TestE2ERevoke(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	c := p.addClient(fakeClient{})
	events := filepath.Join(t.TempDir(), "events")
	s := startSrv(t, e2eConf(map[string]string{"token_event_cmd": hookAppend(events, "$PIZAUTH_ACCOUNT $PIZAUTH_EVENT")},
		p.account("a", c, "")))
	u1 := s.pendingURL(t, "a")
	if out, errOut, code := s.run("revoke", "a"); code != 0 || errOut != "" {
		t.Fatalf("revoke a (pending): exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if st := s.state(t, "a"); st != "No access token" {
		t.Errorf("status after revoking a pending request: %q", st)
	}
	u2 := s.pendingURL(t, "a")
	if e2eURLState(t, u1) == e2eURLState(t, u2) {
		t.Errorf("state reused after revoke: %s", u1)
	}
	_, r := s.follow(t, u1)
	if r.Status != http.StatusOK || strings.Contains(r.Body, processingPage) {
		t.Errorf("redirect for a revoked request: %d %q; want 200 and a page asking for a fresh token", r.Status, r.Body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := p.count(""); n != 0 {
		t.Errorf("%d token requests after a stale redirect, want 0", n)
	}

	s.authorise(t, "a")
	s.mustRun(t, "revoke", "a")
	s.pendingURL(t, "a")
	s.waitFor(t, func() bool {
		l := e2eLines(events)
		i := slices.Index(l, "a token_new")
		return i >= 0 && slices.Contains(l[i:], "a token_revoked")
	}, "token_new and token_revoked")
	got := e2eLines(events)
	// Whether revoking a merely pending request is an event is not
	// specified; revoking a token is.
	for len(got) > 0 && got[0] == "a token_revoked" {
		got = got[1:]
	}
	if !slices.Equal(got, []string{"a token_new", "a token_revoked"}) {
		t.Errorf("token events %q; want token_new, token_revoked", e2eLines(events))
	}
}

// TestE2EReload: non-security changes keep tokens, a changed client_id
// drops the account's token only, a broken file changes nothing, SIGHUP
// reloads, and removed accounts disappear.
func TestE2EReload(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	c1, c2, ck := p.addClient(fakeClient{}), p.addClient(fakeClient{}), p.addClient(fakeClient{})
	s := startSrv(t, e2eConf(nil, p.account("a", c1, ""), p.account("keep", ck, "")))
	tokA := s.authorise(t, "a")
	tokK := s.authorise(t, "keep")

	s.writeConf(t, e2eConf(map[string]string{"refresh_retry": "5s"}, p.account("a", c1, ""), p.account("keep", ck, "")))
	if out, errOut, code := s.run("reload"); code != 0 || errOut != "" {
		t.Fatalf("reload: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := s.showToken(t, "a"); got != tokA {
		t.Errorf("token changed by a reload that changed only refresh_retry")
	}

	s.writeConf(t, e2eConf(nil, p.account("a", c2, ""), p.account("keep", ck, "")))
	s.mustRun(t, "reload")
	s.pendingURL(t, "a")
	if got := s.showToken(t, "keep"); got != tokK {
		t.Errorf("reload that changed a's client_id changed keep's token")
	}
	tokA2 := s.authorise(t, "a")
	if tokA2 != p.lastToken(c2.ID) {
		t.Errorf("after reload a's token %q was not issued to the new client", tokA2)
	}

	good := e2eConf(nil, p.account("a", c2, ""), p.account("keep", ck, ""))
	broken := strings.Replace(good, "refresh_retry = 1s;", "refresh_retry = 1s", 1)
	s.writeConf(t, broken)
	out, errOut, code := s.run("reload")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "ERROR - "+s.confPath+":") || !e2eLineCol.MatchString(errOut) {
		t.Errorf("reload of a broken file: exit %d, stdout %q, stderr %q; want exit 1 and `ERROR - %s:LINE:COLUMN: ...`", code, out, errOut, s.confPath)
	}
	if s.showToken(t, "a") != tokA2 || s.showToken(t, "keep") != tokK {
		t.Errorf("tokens changed by a failed reload")
	}

	s.writeConf(t, e2eConf(nil, p.account("a", c1, "")))
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, func() bool {
		_, errOut, _ := s.run("show", "keep")
		return errOut == "ERROR - No account 'keep'\n"
	}, "SIGHUP to remove account keep")
	if st := s.state(t, "a"); st != "No access token" {
		t.Errorf("status of a after SIGHUP changed its client_id: %q", st)
	}
}

// TestE2EReloadWhereTokensGo: tokens only ever go where they would have
// gone when obtained. A reload that changes only revoke_uri,
// device_auth_uri or token_endpoint_auth_method drops the account's token,
// so a later revoke sends nothing to the new address; a reload that changes
// nothing keeps it.
func TestE2EReloadWhereTokensGo(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	q := confQuote
	for _, tc := range []struct {
		name, old, new string
		kept           bool
	}{
		{"unchanged", "", "", true},
		{"revoke_uri changed", "revoke_uri = " + q(p.URL+"/revoke"), "revoke_uri = " + q(p.URL+"/revoke?elsewhere"), false},
		{"revoke_uri removed", "revoke_uri = " + q(p.URL+"/revoke") + ";", "", false},
		{"device_auth_uri added", "}\n", "    device_auth_uri = " + q(p.URL+"/device") + ";\n}\n", false},
		{"token_endpoint_auth_method", "}\n", "    token_endpoint_auth_method = \"client_secret_basic\";\n}\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := p.addClient(fakeClient{Revoke: true})
			acct := p.account("a", c, "")
			s := startSrv(t, e2eConf(nil, acct))
			tok := s.authorise(t, "a")
			s.writeConf(t, e2eConf(nil, strings.Replace(acct, tc.old, tc.new, 1)))
			s.mustRun(t, "reload")
			if tc.kept {
				if got := s.showToken(t, "a"); got != tok {
					t.Errorf("an unchanged reload replaced the token")
				}
				return
			}
			if st := s.state(t, "a"); st != "No access token" {
				t.Fatalf("after the reload: %q; want the token dropped", st)
			}
			s.mustRun(t, "revoke", "a")
			s.mustRun(t, "status")
			if n := len(p.clientRequests("/revoke", c.ID)); n != 0 {
				t.Errorf("%d revocation requests after the token was dropped", n)
			}
		})
	}
}

// TestE2EReloadNeedsRunningListeners: listeners are bound at start, so a
// reload whose accounts need a listener the server does not run fails like
// an invalid file, naming the account and the listener, and changes
// nothing; otherwise the authorisation URL would send the browser to a port
// where nothing speaks its protocol, or to port 0.
func TestE2EReloadNeedsRunningListeners(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	httpOnly := map[string]string{"http_listen": `"127.0.0.1:0"`, "https_listen": "none"}
	httpsOnly := map[string]string{"http_listen": "none", "https_listen": `"127.0.0.1:0"`}
	for _, tc := range []struct {
		name                string
		start, reload       map[string]string
		startExtra, reExtra string
		want                string
	}{
		{"https account, HTTP listener only", httpOnly, httpsOnly, "", `redirect_uri = "https://localhost/";`,
			"account 'a' has an https redirect_uri, but the server runs no HTTPS listener (https_listen was none when it started): restart the server to change listeners\n"},
		{"http account, HTTPS listener only", httpsOnly, httpOnly, `redirect_uri = "https://localhost/";`, "",
			"account 'a' has an http redirect_uri, but the server runs no HTTP listener (http_listen was none when it started): restart the server to change listeners\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := p.addClient(fakeClient{})
			s := startSrv(t, e2eConf(tc.start, p.account("a", c, tc.startExtra)))
			u := s.pendingURL(t, "a")
			s.writeConf(t, e2eConf(tc.reload, p.account("a", c, tc.reExtra)))
			if _, errOut, code := s.run("reload"); code != 1 || errOut != "ERROR - "+s.confPath+": "+tc.want {
				t.Errorf("reload: exit %d, stderr %q; want exit 1 and the file's path, then %q", code, errOut, tc.want)
			}
			if got := s.pendingURL(t, "a"); got != u {
				t.Errorf("the refused reload changed the pending request: %s, was %s", got, u)
			}
		})
	}
}

// TestE2ESecondServerRefused: a second server on the same socket refuses
// to start and the first keeps running.
func TestE2ESecondServerRefused(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := startSrv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	for _, args := range [][]string{{"server", "-d", "-c", s.confPath}, {"server", "-c", s.confPath}} {
		_, errOut, code := s.run(args...)
		if code != 1 || !strings.Contains(errOut, "pizauth authenticator already running") {
			t.Errorf("%q with a server running: exit %d, stderr %q", args, code, errOut)
		}
	}
	select {
	case <-s.exited:
		t.Fatalf("first server exited: %v", s.waitErr)
	default:
	}
	s.mustRun(t, "status")
}

// TestE2EStaleSocket: a socket file nobody listens on is removed at start.
func TestE2EStaleSocket(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := newSrvEnv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	if err := os.MkdirAll(filepath.Dir(s.socketPath()), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.socketPath(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(s.socketPath()); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	if _, errOut, code := s.run("status"); code != 1 || !strings.Contains(errOut, e2eNotRunning) {
		t.Errorf("status with a stale socket: exit %d, stderr %q", code, errOut)
	}
	s.start(t)
	s.pendingURL(t, "a")
}

// stopDetached shuts down a server started without -d and waits for its
// socket to go.
func (s *srv) stopDetached(t *testing.T) {
	if _, err := os.Stat(s.socketPath()); err != nil {
		return
	}
	s.run("shutdown")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(s.socketPath()); errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("detached server's socket still there 5 s after shutdown")
}

// TestE2EDetachedStart: without -d, `pizauth server` returns only once the
// detached server answers.
func TestE2EDetachedStart(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := newSrvEnv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	t.Cleanup(func() { s.stopDetached(t) })
	if out, errOut, code := s.run("server", "-c", s.confPath); code != 0 {
		t.Fatalf("pizauth server: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := s.run("status"); code != 0 || out != "a: No access token\n" {
		t.Fatalf("status right after pizauth server returned: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	s.authorise(t, "a")
	inf := s.info(t)
	if !inf.ServerRunning || inf.ConfigFile != s.confPath {
		t.Errorf("info -j of a detached server: %+v", inf)
	}
	s.stopDetached(t)
}

// TestE2EStartBrokenConfig: a broken config stops start-up, detached or
// not, with the parser's message, and leaves no socket behind.
func TestE2EStartBrokenConfig(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	good := e2eConf(nil, p.account("a", p.addClient(fakeClient{}), ""))
	s := newSrvEnv(t, strings.Replace(good, "https_listen = none;", "https_listen = none", 1))
	t.Cleanup(func() { s.stopDetached(t) })
	for _, args := range [][]string{{"server", "-c", s.confPath}, {"server", "-d", "-c", s.confPath}} {
		out, errOut, code := s.run(args...)
		if code != 1 || !strings.HasPrefix(errOut, "ERROR - "+s.confPath+":") || !e2eLineCol.MatchString(errOut) {
			t.Errorf("%q with a broken config: exit %d, stdout %q, stderr %q; want exit 1 and `ERROR - %s:LINE:COLUMN: ...`", args, code, out, errOut, s.confPath)
		}
		if _, err := os.Stat(s.socketPath()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%q with a broken config left a socket behind (%v)", args, err)
		}
		if _, errOut, code := s.run("status"); code != 1 || !strings.Contains(errOut, e2eNotRunning) {
			t.Errorf("status after a failed start: exit %d, stderr %q", code, errOut)
		}
	}
	s.writeConf(t, e2eConf(nil))
	if _, errOut, code := s.run("server", "-c", s.confPath); code != 1 || errOut == "" {
		t.Errorf("server with no account: exit %d, stderr %q; want exit 1 and a message", code, errOut)
	}
}

// TestE2EHTTPSRedirect: with only the HTTPS listener, the redirect goes to
// it and it serves the certificate info describes.
func TestE2EHTTPSRedirect(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	c := p.addClient(fakeClient{RedirectURI: "https://localhost/"})
	s := startSrv(t, e2eConf(map[string]string{"http_listen": "none", "https_listen": `"127.0.0.1:0"`}, p.account("a", c, "")))
	inf := s.info(t)
	if inf.ServerInfo == nil || inf.ServerInfo.HTTPPort != "none" || !e2eFingerprintRE.MatchString(inf.ServerInfo.Fingerprint) {
		t.Fatalf("info -j server_info %+v; want http_port none and a fingerprint", inf.ServerInfo)
	}
	if _, err := strconv.Atoi(inf.ServerInfo.HTTPSPort); err != nil {
		t.Errorf("https_port %q is not a port number", inf.ServerInfo.HTTPSPort)
	}
	u := s.pendingURL(t, "a")
	cb, r := s.follow(t, u)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, processingPage) {
		t.Fatalf("HTTPS redirect answered %d %q", r.Status, r.Body)
	}
	if !strings.HasPrefix(cb, "https://localhost:"+inf.ServerInfo.HTTPSPort+"/?") {
		t.Errorf("redirected to %s, want the HTTPS listener's port %s", cb, inf.ServerInfo.HTTPSPort)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := r.Cert.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not name %s: %v", h, err)
		}
	}
	if r.Cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("certificate key is %v, want ECDSA P-256", r.Cert.PublicKeyAlgorithm)
	}
	// As the original's info: the key's raw bytes (an uncompressed point)
	// in colon-separated upper-case hex; and the certificate's SHA-256.
	colons := func(b []byte) string { return strings.ReplaceAll(fmt.Sprintf("% X", b), " ", ":") }
	pub := r.Cert.PublicKey.(*ecdsa.PublicKey)
	point := append(append([]byte{4}, pub.X.FillBytes(make([]byte, 32))...), pub.Y.FillBytes(make([]byte, 32))...)
	if got := inf.ServerInfo.PubKey; got == nil || *got != colons(point) {
		t.Errorf("info -j https_pub_key %v, want %s", got, colons(point))
	}
	if sum := sha256.Sum256(r.Cert.Raw); inf.ServerInfo.Fingerprint != colons(sum[:]) {
		t.Errorf("info -j https_cert_fingerprint %s, want %s", inf.ServerInfo.Fingerprint, colons(sum[:]))
	}
	if human := s.mustRun(t, "info"); !strings.Contains(human, "  config file: "+s.confPath+"\n") {
		t.Errorf("pizauth info with an existing config file:\n%s", human)
	}
	s.waitToken(t, "a", "")
}

// TestE2EAuthErrorRedirect: a provider redirecting with error= runs
// error_notify_cmd with the reason and empties the account.
func TestE2EAuthErrorRedirect(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	errs := filepath.Join(t.TempDir(), "errors")
	s := startSrv(t, e2eConf(map[string]string{"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG")},
		p.account("acct", p.addClient(fakeClient{}), "")))
	p.denyNext()
	u := s.pendingURL(t, "acct")
	_, r := s.follow(t, u)
	if r.Status != http.StatusBadRequest {
		t.Errorf("error redirect answered %d %q, want 400", r.Status, r.Body)
	}
	s.waitFor(t, func() bool { return strings.HasPrefix(e2eRead(errs), "acct ") }, "error_notify_cmd")
	if msg := e2eRead(errs); !strings.Contains(msg, "access_denied") && !strings.Contains(msg, "The user denied access") {
		t.Errorf("error_notify_cmd message %q does not give the provider's reason", msg)
	}
	if st := s.state(t, "acct"); st != "No access token" {
		t.Errorf("status after an error redirect: %q", st)
	}
	if n := p.count(""); n != 0 {
		t.Errorf("%d token requests after an error redirect", n)
	}
	if u2 := s.pendingURL(t, "acct"); u2 == u {
		t.Errorf("the refused request's URL was offered again")
	}
	s.authorise(t, "acct")
}

// TestE2EHostileErrorRedirect: an error redirect whose text carries
// terminal controls (C0, C1 such as CSI and NEL), bidi overrides, line
// separators and 4 KB of padding reaches error_notify_cmd, the log and the
// browser as one short, inert line.
func TestE2EHostileErrorRedirect(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	errs := filepath.Join(t.TempDir(), "errors")
	s := startSrv(t, e2eConf(map[string]string{"error_notify_cmd": hookAppend(errs, "$PIZAUTH_MSG")},
		p.account("acct", p.addClient(fakeClient{}), "")))
	u := s.pendingURL(t, "acct")
	pu, _ := url.Parse(u)
	q := pu.Query()
	evil := "bad\x1b[2J\u009b31m\u0085next\u2028line\u202etxt.exe\u200b" + strings.Repeat("é", 2000)
	back := q.Get("redirect_uri") + "?" + url.Values{"state": {q.Get("state")}, "error": {"access_denied\u009b"}, "error_description": {evil}}.Encode()
	r := e2eBrowse(t, http.MethodGet, back)
	s.waitFor(t, func() bool { return len(e2eLines(errs)) == 1 }, "error_notify_cmd")
	msg := e2eLines(errs)[0]
	for what, text := range map[string]string{"PIZAUTH_MSG": msg, "the page": r.Body, "the log": s.logs()} {
		if strings.ContainsAny(text, "\x1b\u009b\u0085\u2028\u202e\u200b") {
			t.Errorf("%s carries control, bidi or invisible characters: %q", what, cut(text, 200))
		}
	}
	if !strings.HasPrefix(msg, "Authorisation failed: access_denied: bad [2J 31m next line txt.exe") || len(msg) > 400 {
		t.Errorf("PIZAUTH_MSG %q (%d bytes); want one short cleaned line", cut(msg, 120), len(msg))
	}
}

// TestE2EErrorMarkupEscaped: a provider's text reaches PIZAUTH_MSG with
// <, > and & escaped, so that a notification daemon rendering markup shows
// it as text, not as a link; the log keeps it as it came.
func TestE2EErrorMarkupEscaped(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	errs := filepath.Join(t.TempDir(), "errors")
	s := startSrv(t, e2eConf(map[string]string{"error_notify_cmd": hookAppend(errs, "$PIZAUTH_MSG")},
		p.account("acct", p.addClient(fakeClient{}), "")))
	q, _ := url.ParseQuery(strings.SplitN(s.pendingURL(t, "acct"), "?", 2)[1])
	desc := `<a href="https://evil.example/">Click to re-authorise</a> & <b>now</b>`
	e2eBrowse(t, http.MethodGet, q.Get("redirect_uri")+"?"+url.Values{"state": {q.Get("state")}, "error": {"access_denied"}, "error_description": {desc}}.Encode())
	s.waitFor(t, func() bool { return len(e2eLines(errs)) == 1 }, "error_notify_cmd")
	want := `Authorisation failed: access_denied: &lt;a href="https://evil.example/"&gt;Click to re-authorise&lt;/a&gt; &amp; &lt;b&gt;now&lt;/b&gt;`
	if msg := e2eLines(errs)[0]; msg != want {
		t.Errorf("PIZAUTH_MSG %q, want %q", msg, want)
	}
	if !strings.Contains(s.logs(), desc) {
		t.Errorf("the log does not carry the provider's text as it came:\n%s", s.logs())
	}
}

// TestE2EAuthNotifyRepeats: auth_notify_cmd runs at once and then every
// auth_notify_interval with the same URL while the request is pending, and
// stops once authorised.
func TestE2EAuthNotifyRepeats(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	nf := filepath.Join(t.TempDir(), "notify")
	s := startSrv(t, e2eConf(map[string]string{"auth_notify_cmd": hookAppend(nf, "$PIZAUTH_ACCOUNT $PIZAUTH_URL")},
		p.account("acct", p.addClient(fakeClient{}), "")))
	start := time.Now()
	u := s.pendingURL(t, "acct")
	s.waitFor(t, func() bool { return len(e2eLines(nf)) >= 3 }, "three auth notifications")
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("three notifications within %v with auth_notify_interval = 1s", d)
	}
	for _, l := range e2eLines(nf) {
		if l != "acct "+u {
			t.Errorf("notification %q, want %q", l, "acct "+u)
		}
	}
	st := s.state(t, "acct")
	if m := e2eNotifyLine.FindStringSubmatch(st); m == nil {
		t.Errorf("status after notifying %q, want `Access token pending authentication (last notification <time>)`", st)
	} else if _, err := time.Parse(time.RFC1123Z, m[1]); err != nil {
		t.Errorf("last notification time %q: %v", m[1], err)
	}
	s.authorise(t, "acct")
	n := len(e2eLines(nf))
	time.Sleep(2200 * time.Millisecond)
	if m := len(e2eLines(nf)); m > n+1 {
		t.Errorf("%d notifications after the account was authorised", m-n)
	}
}

// TestE2ETokenEventOrder: token_new, token_refreshed, token_invalidated and
// token_revoked reach token_event_cmd in order.
func TestE2ETokenEventOrder(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	p.setExpiresIn(3)
	events := filepath.Join(t.TempDir(), "events")
	s := startSrv(t, e2eConf(map[string]string{"token_event_cmd": hookAppend(events, "$PIZAUTH_EVENT")},
		p.account("acct", p.addClient(fakeClient{}), "")))
	s.authorise(t, "acct")
	s.waitFor(t, func() bool { return slices.Contains(e2eLines(events), "token_refreshed") }, "token_refreshed")
	p.failNextJSON("refresh_token", 1, http.StatusBadRequest, `{"error":"invalid_grant"}`)
	s.waitFor(t, func() bool { return slices.Contains(e2eLines(events), "token_invalidated") }, "token_invalidated")
	p.setExpiresIn(3600)
	s.authorise(t, "acct")
	s.mustRun(t, "revoke", "acct")
	want := []string{"token_new", "token_refreshed", "token_invalidated", "token_new", "token_revoked"}
	s.waitFor(t, func() bool { return len(e2eCompress(e2eLines(events))) >= len(want) }, "all token events")
	if got := e2eCompress(e2eLines(events)); !slices.Equal(got, want) {
		t.Errorf("token events (repeats folded) %q, want %q", got, want)
	}
}

// TestE2ETransientRefreshErrors: 503, 429 and 500 keep the token and are
// retried refresh_retry apart until the provider recovers.
func TestE2ETransientRefreshErrors(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	events := filepath.Join(t.TempDir(), "events")
	s := startSrv(t, e2eConf(map[string]string{"token_event_cmd": hookAppend(events, "$PIZAUTH_EVENT")},
		p.account("acct", p.addClient(fakeClient{}), "")))
	tok := s.authorise(t, "acct")
	p.failNextJSON("refresh_token", 1, 503, `{"error":"temporarily_unavailable"}`)
	p.failNext("refresh_token", 1, 429, "text/plain", "slow down")
	p.failNextJSON("refresh_token", 1, 500, `{"error":"server_error"}`)
	s.mustRun(t, "refresh", "acct")
	s.waitFor(t, func() bool { return p.count("refresh_token") >= 2 }, "a second refresh attempt")
	if got := s.showToken(t, "acct"); got != tok {
		t.Errorf("show after transient failures printed %q, want the old token", got)
	}
	tok2 := s.waitToken(t, "acct", tok)
	reqs := p.requests("/token", "refresh_token")
	var statuses []int
	for i, r := range reqs {
		statuses = append(statuses, r.Status)
		if i > 0 {
			if gap := r.At.Sub(reqs[i-1].At); gap < 700*time.Millisecond {
				t.Errorf("refresh attempt %d only %v after the previous one (refresh_retry = 1s)", i+1, gap)
			}
		}
	}
	if !slices.Equal(statuses, []int{503, 429, 500, 200}) {
		t.Errorf("refresh answers %v, want 503 429 500 200", statuses)
	}
	if tok2 != p.lastToken(reqs[0].ClientID) {
		t.Errorf("show printed %q, provider issued %q", tok2, p.lastToken(reqs[0].ClientID))
	}
	if slices.Contains(e2eLines(events), "token_invalidated") {
		t.Errorf("transient errors invalidated the token: %q", e2eLines(events))
	}
}

// TestE2EOutageKeepsLogin: a CDN in front of the provider answers refreshes
// with its HTML 520 page for longer than the token lives. The login is kept
// (no token_invalidated, no new login URL), error_notify_cmd hears of the
// outage once with its reason, every attempt is logged at info level, show
// says at once what is going on and how to log in again instead, and the
// first refresh the provider answers brings a token. A new outage is
// notified again.
func TestE2EOutageKeepsLogin(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	p.setExpiresIn(3)
	dir := t.TempDir()
	events, errs := filepath.Join(dir, "events"), filepath.Join(dir, "errors")
	s := startSrv(t, e2eConf(map[string]string{
		"token_event_cmd":  hookAppend(events, "$PIZAUTH_EVENT"),
		"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG"),
	}, p.account("acct", p.addClient(fakeClient{}), "")))
	const page = "<!DOCTYPE html><html><head><title>login.example.com | 520: Web server is returning an unknown error</title></head><body>Ray ID: 8f0e1d2c3b4a5968</body></html>"
	p.failNext("refresh_token", 6, 520, "text/html; charset=UTF-8", page)
	tok := s.authorise(t, "acct")
	outage := regexp.MustCompile(`^ERROR - Access token has expired and refreshing it failed \(token endpoint returned HTTP 520 \(text/html\)\); pizauth keeps the login and tries again (now|in 1s)\. To log in again instead, run 'pizauth revoke acct', then 'pizauth show acct'\n$`)
	var shown string
	s.waitFor(t, func() bool {
		_, shown, _ = s.run("show", "acct")
		return outage.MatchString(shown) || p.count("refresh_token") > 6
	}, "show to explain the outage")
	if !outage.MatchString(shown) {
		t.Errorf("show during the outage: %q", shown)
	}
	tok2 := s.waitToken(t, "acct", tok)
	reqs := p.requests("/token", "refresh_token")
	if !slices.Contains(p.tokens(reqs[0].ClientID), tok2) {
		t.Errorf("after the outage show printed %q, not a token the provider issued", tok2)
	}
	var statuses []int
	for _, r := range reqs[:min(len(reqs), 7)] {
		statuses = append(statuses, r.Status)
	}
	if !slices.Equal(statuses, []int{520, 520, 520, 520, 520, 520, 200}) {
		t.Errorf("refresh answers %v, want six 520s and then a token", statuses)
	}
	if l := e2eLines(errs); len(l) != 1 || l[0] != "acct Token refresh failed, pizauth keeps the login and retries until the provider answers: token endpoint returned HTTP 520 (text/html)" {
		t.Errorf("error_notify_cmd during the outage: %q; want one line with the reason", l)
	}
	// token_event_cmd runs after the token is shown: wait for its line.
	s.waitFor(t, func() bool { return slices.Contains(e2eLines(events), "token_refreshed") }, "the token_refreshed event")
	if got := e2eCompress(e2eLines(events)); !slices.Equal(got, []string{"token_new", "token_refreshed"}) {
		t.Errorf("token events %q; want the login kept", got)
	}
	for i := 1; i <= 6; i++ {
		if want := fmt.Sprintf("INFO Transient error refreshing 'acct' (attempt %d), will retry: token endpoint returned HTTP 520 (text/html); next attempt in 1s", i); !strings.Contains(s.logs(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if len(p.requests("/authorize", "")) != 1 {
		t.Errorf("the outage started a new login")
	}

	p.failNextJSON("refresh_token", 1, 503, `{"error":"temporarily_unavailable"}`)
	s.mustRun(t, "refresh", "acct")
	s.waitFor(t, func() bool { return len(e2eLines(errs)) == 2 }, "error_notify_cmd for a second outage")
}

// TestE2EShowRespectsRetryPacing: mail programs poll `show` constantly. An
// expired token whose refresh keeps failing (a provider answering 503)
// gets one attempt per refresh_retry however often `show` asks, so a
// failing transient_error_if_cmd cannot invalidate it within seconds; show
// says truthfully what failed, when the next attempt is due and how to log
// in again instead, and an
// explicit `pizauth refresh` still asks at once.
func TestE2EShowRespectsRetryPacing(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	p.setExpiresIn(2)
	c := p.addClient(fakeClient{})
	s := startSrv(t, e2eConf(map[string]string{
		"refresh_retry":          "5m",
		"refresh_before_expiry":  "1s",
		"transient_error_if_cmd": confQuote("exit 1"),
	}, p.account("acct", c, "")))
	s.authorise(t, "acct")
	p.failNextJSON("refresh_token", 100, 503, `{"error":"temporarily_unavailable"}`)
	s.waitFor(t, func() bool { return p.count("refresh_token") == 1 }, "the scheduled refresh")
	// The log line follows the failure's record: no show can find the
	// refresh still running.
	s.waitFor(t, func() bool { return strings.Contains(s.logs(), "Transient error refreshing 'acct' (attempt 1)") }, "the refresh to fail")
	s.waitFor(t, func() bool {
		return strings.HasPrefix(s.state(t, "acct"), "Access token expired (last refresh attempt ")
	}, "the token to expire")
	want := regexp.MustCompile(`^ERROR - Access token has expired and refreshing it failed \(token endpoint returned error "temporarily_unavailable" \(HTTP 503\)\); pizauth keeps the login and tries again in 4m[0-9]+s\. To log in again instead, run 'pizauth revoke acct', then 'pizauth show acct'\n$`)
	for i := 0; i < 20; i++ {
		if got := s.showErr(t, "acct"); !want.MatchString(got) {
			t.Fatalf("show %d of an expired token: %q", i+1, got)
		}
	}
	if n := p.count("refresh_token"); n != 1 {
		t.Errorf("%d refresh requests after 20 shows, want 1 per refresh_retry", n)
	}
	s.mustRun(t, "refresh", "acct")
	s.waitFor(t, func() bool { return p.count("refresh_token") == 2 }, "the explicit refresh")
	if st := s.state(t, "acct"); !strings.HasPrefix(st, "Access token expired") {
		t.Errorf("after two transient failures: %q; want the token kept", st)
	}
}

// TestE2EShortLivedTokensRefreshedBeforeExpiry: a provider that issues
// tokens living 12 s, with refresh_before_expiry = 6s and the default
// refresh_retry of 40 s, gets its refreshes about 6 s into each token's
// life: refresh_retry paces retries only, so a mail program never meets
// an expired token.
func TestE2EShortLivedTokensRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	p.setExpiresIn(12)
	s := startSrv(t, e2eConf(map[string]string{"refresh_retry": "", "refresh_before_expiry": "6s"},
		p.account("acct", p.addClient(fakeClient{}), "")))
	s.authorise(t, "acct")
	s.waitFor(t, func() bool { return p.count("refresh_token") >= 2 }, "two refreshes")
	issued := append(p.requests("/token", "authorization_code"), p.requests("/token", "refresh_token")...)
	for i := 1; i < len(issued); i++ {
		if life := issued[i].At.Sub(issued[i-1].At); life >= 12*time.Second {
			t.Errorf("token %d was refreshed %v after it was issued, after it had expired", i, life)
		}
	}
	if _, errOut, code := s.run("show", "acct"); code != 0 {
		t.Errorf("show between refreshes: %q", errOut)
	}
}

// TestE2EShutdownFinishesRequests: shutting down while a refresh, a code
// exchange and a device authorisation are at the provider waits for their
// answers: the tokens are kept and their token events run, before the
// server exits, and nothing is reported as an error. A request that never
// ends is given up after 10 seconds, with a warning.
func TestE2EShutdownFinishesRequests(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	errs, events, notes := filepath.Join(dir, "errors"), filepath.Join(dir, "events"), filepath.Join(dir, "notes")
	cr, cx, cd := p.addClient(fakeClient{}), p.addClient(fakeClient{}), p.addClient(fakeClient{Device: true})
	s := startSrv(t, e2eConf(map[string]string{
		"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG"),
		"token_event_cmd":  hookAppend(events, "$PIZAUTH_ACCOUNT $PIZAUTH_EVENT"),
		"auth_notify_cmd":  hookAppend(notes, "$PIZAUTH_ACCOUNT"),
	}, p.account("r", cr, ""), p.account("x", cx, ""), p.account("d", cd, "")))
	s.authorise(t, "r")
	releaseRefresh, releaseCode := p.hold("refresh_token"), p.hold("authorization_code")
	defer releaseRefresh()
	defer releaseCode()
	defer p.holdDevice()()
	s.mustRun(t, "refresh", "r")
	s.follow(t, s.pendingURL(t, "x"))
	go s.run("show", "d")
	s.waitFor(t, func() bool {
		return len(p.clientRequests("/token", cr.ID)) == 2 && len(p.clientRequests("/token", cx.ID)) == 1 && len(p.clientRequests("/device", cd.ID)) == 1
	}, "the refresh, the exchange and the device request to reach the provider")
	notified := e2eRead(notes)
	shutdownDone := make(chan int, 1)
	go func() { _, _, code := s.run("shutdown"); shutdownDone <- code }()
	s.waitFor(t, func() bool { return strings.Contains(s.logs(), "INFO Shutting down") }, "shutdown to begin")
	releaseRefresh()
	releaseCode()
	s.waitFor(t, func() bool { return len(e2eLines(events)) == 3 }, "the token events of the refresh and the exchange")
	if code := <-shutdownDone; code != 0 {
		t.Errorf("pizauth shutdown: exit %d", code)
	}
	s.waitExit(t)
	if got := e2eLines(events); !slices.Equal(got, []string{"r token_new", "r token_refreshed", "x token_new"}) &&
		!slices.Equal(got, []string{"r token_new", "x token_new", "r token_refreshed"}) {
		t.Errorf("token events %q; want r's token_new, then r's token_refreshed and x's token_new", got)
	}
	if got := e2eRead(errs); got != "" {
		t.Errorf("error_notify_cmd ran at shutdown: %q", got)
	}
	if got := e2eRead(notes); got != notified {
		t.Errorf("auth_notify_cmd ran during shutdown: %q", got)
	}
	if strings.Contains(s.logs(), " ERROR ") {
		t.Errorf("the log reports an error:\n%s", s.logs())
	}
	if !strings.Contains(s.logs(), "WARN Stopping without the answers to token requests still running after 10s") {
		t.Errorf("the log does not say that shutdown gave up on the device request")
	}
}

// TestE2ETransientErrorIfCmd: after 6 consecutive transient failures a
// failing transient_error_if_cmd makes the error permanent.
func TestE2ETransientErrorIfCmd(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	events, tf := filepath.Join(dir, "events"), filepath.Join(dir, "transient")
	s := startSrv(t, e2eConf(map[string]string{
		"token_event_cmd":        hookAppend(events, "$PIZAUTH_EVENT"),
		"transient_error_if_cmd": confQuote(fmt.Sprintf(`echo "$PIZAUTH_ACCOUNT" >> '%s'; exit 1`, tf)),
	}, p.account("acct", p.addClient(fakeClient{}), "")))
	s.authorise(t, "acct")
	p.failNextJSON("refresh_token", 100, 503, `{"error":"temporarily_unavailable"}`)
	s.mustRun(t, "refresh", "acct")
	s.waitFor(t, func() bool { return s.state(t, "acct") == "No access token" }, "the account to be invalidated")
	s.waitFor(t, func() bool { return slices.Contains(e2eLines(events), "token_invalidated") }, "token_invalidated")
	if got := e2eLines(tf); !slices.Equal(got, []string{"acct"}) {
		t.Errorf("transient_error_if_cmd ran as %q, want once for acct", got)
	}
	if n := p.count("refresh_token"); n != 6 {
		t.Errorf("%d refresh attempts before invalidation, want 6", n)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := p.count("refresh_token"); n != 6 {
		t.Errorf("%d refresh attempts after invalidation, want none beyond 6", n)
	}
	s.pendingURL(t, "acct")
}

// TestE2EInvalidGrantInvalidates: a 400 invalid_grant on refresh empties
// the account and tells the user, in plain words, the usual causes and
// what to do.
func TestE2EInvalidGrantInvalidates(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	events, errs := filepath.Join(dir, "events"), filepath.Join(dir, "errors")
	s := startSrv(t, e2eConf(map[string]string{
		"token_event_cmd":  hookAppend(events, "$PIZAUTH_EVENT"),
		"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG"),
	}, p.account("acct", p.addClient(fakeClient{}), "")))
	s.authorise(t, "acct")
	p.failNextJSON("refresh_token", 1, 400, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`)
	s.mustRun(t, "refresh", "acct")
	s.waitFor(t, func() bool { return s.state(t, "acct") == "No access token" }, "the account to be invalidated")
	s.waitFor(t, func() bool { return strings.HasPrefix(e2eRead(errs), "acct ") }, "error_notify_cmd")
	s.waitFor(t, func() bool { return slices.Contains(e2eLines(events), "token_invalidated") }, "token_invalidated")
	if n := p.count("refresh_token"); n != 1 {
		t.Errorf("%d refresh attempts, want 1 (invalid_grant is permanent)", n)
	}
	want := `acct Token refresh failed: token endpoint returned error "invalid_grant" (HTTP 400): Token has been expired or revoked. The provider no longer accepts this login: usually the password was changed or the access revoked; a Google app in "testing" status gets refresh tokens that die after 7 days, and Microsoft's expire after 90 days unused. Run 'pizauth show acct' to log in again`
	if got := e2eLines(errs); len(got) != 1 || got[0] != want {
		t.Errorf("error_notify_cmd got %q, want %q", got, want)
	}
	if !strings.Contains(s.logs(), "ERROR acct: "+strings.TrimPrefix(want, "acct ")) {
		t.Errorf("the log does not say what happened and what to do")
	}
	s.pendingURL(t, "acct")
}

// TestE2EHookTimeoutKillsHook: a token_event_cmd that hangs is killed with
// everything it started after 10 s, and the next event then runs.
func TestE2EHookTimeoutKillsHook(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 10 s hook timeout")
	}
	t.Parallel()
	p := newFakeProvider(t)
	f := filepath.Join(t.TempDir(), "events")
	hook := fmt.Sprintf(`echo "$PIZAUTH_EVENT" >> '%[1]s'; if [ "$PIZAUTH_EVENT" = token_new ]; then (sleep 11; echo late >> '%[1]s') & wait; fi`, f)
	s := startSrv(t, e2eConf(map[string]string{"token_event_cmd": confQuote(hook)},
		p.account("acct", p.addClient(fakeClient{}), "")))
	s.authorise(t, "acct")
	s.waitFor(t, func() bool { return slices.Contains(e2eLines(f), "token_new") }, "token_new")
	t0 := time.Now()
	s.mustRun(t, "revoke", "acct")
	s.mustRun(t, "status")
	e2eWait(t, 20*time.Second, func() bool { return slices.Contains(e2eLines(f), "token_revoked") }, "token_revoked after the hung hook's timeout")
	if d := time.Since(t0); d < 8*time.Second {
		t.Errorf("token_revoked ran %v after token_new's hook started; events must run one at a time", d)
	}
	time.Sleep(time.Until(t0.Add(12500 * time.Millisecond)))
	if got := e2eLines(f); slices.Contains(got, "late") {
		t.Errorf("the timed-out hook's child survived: %q", got)
	}
}

// e2eSocketExchange writes raw bytes to the server's socket and returns
// what comes back before the server closes the connection. It fails the
// test if the server neither answers nor closes within 12 s.
func e2eSocketExchange(t *testing.T, s *srv, data []byte) []byte {
	t.Helper()
	conn, err := net.Dial("unix", s.socketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(12 * time.Second))
	conn.Write(data)
	// Half-close so that a server waiting for the rest of a frame sees
	// end-of-file at once instead of after its idle timeout.
	conn.(*net.UnixConn).CloseWrite()
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("after %q the server neither answered nor closed the connection", data[:min(len(data), 16)])
	}
	return got
}

// TestE2EBadSocketInput: garbage, oversized and incomplete frames get an
// error or a closed connection and disturb nothing.
func TestE2EBadSocketInput(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := startSrv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), ""), p.account("b", p.addClient(fakeClient{}), "")))
	tok := s.authorise(t, "a")
	u := s.pendingURL(t, "b")

	// Hold incomplete connections open while the others run: one silent,
	// one that stops in the middle of a frame.
	idle, err := net.Dial("unix", s.socketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	partial, err := net.Dial("unix", s.socketPath())
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	partial.Write([]byte{0, 0, 0, 100, 'x', 'y'})

	frame := func(payload string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
		return append(b, payload...)
	}
	resp := e2eSocketExchange(t, s, frame("not a request"))
	if len(resp) < 4 || int(binary.BigEndian.Uint32(resp)) != len(resp)-4 || len(resp) == 4 {
		t.Errorf("a well-framed garbage request got %q; want an error response frame", resp)
	}
	for _, data := range [][]byte{
		frame(""),
		{0xff, 0xff, 0xff, 0xff, 'x'},
		binary.BigEndian.AppendUint32(nil, 64<<20+1),
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0, 0},
	} {
		resp := e2eSocketExchange(t, s, data)
		if len(resp) > 0 && (len(resp) < 4 || int(binary.BigEndian.Uint32(resp)) != len(resp)-4) {
			t.Errorf("after %q the server sent %q, which is not a frame", data, resp)
		}
		if got := s.showToken(t, "a"); got != tok {
			t.Errorf("token changed after bad socket input %q", data)
		}
	}
	if got := s.pendingURL(t, "b"); got != u {
		t.Errorf("pending request changed by bad socket input")
	}
	s.mustRun(t, "status")
}

// e2eRawHTTP sends raw bytes to a redirect listener and returns the status
// code of the answer.
func e2eRawHTTP(t *testing.T, port, req string) int {
	t.Helper()
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte(req))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no HTTP answer to %q: %v", req[:min(len(req), 40)], err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestE2EBadRedirectInput: malformed, oversized, forged, misdirected and
// replayed requests to the redirect listener change nothing.
func TestE2EBadRedirectInput(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	ca, cb := p.addClient(fakeClient{}), p.addClient(fakeClient{})
	s := startSrv(t, e2eConf(nil, p.account("a", ca, ""), p.account("b", cb, "")))
	tok := s.authorise(t, "a")
	u := s.pendingURL(t, "b")
	state := e2eURLState(t, u)
	port := s.info(t).ServerInfo.HTTPPort
	base := "http://localhost:" + port

	if st := e2eRawHTTP(t, port, "GARBAGE\r\n\r\n"); st != 400 {
		t.Errorf("garbage HTTP: status %d, want 400", st)
	}
	big := "GET /?state=" + url.QueryEscape(state) + "&code=x HTTP/1.1\r\nHost: localhost:" + port + "\r\nX-Pad: " + strings.Repeat("p", 20<<10) + "\r\n\r\n"
	if st := e2eRawHTTP(t, port, big); st != 400 {
		t.Errorf("request over 16 KiB: status %d, want 400", st)
	}
	if st := e2eRawHTTP(t, port, "GET /?state="+url.QueryEscape(state)+"&code=x HTTP/1.0\r\n\r\n"); st != 400 {
		t.Errorf("request without Host: status %d, want 400", st)
	}
	if r := e2eBrowse(t, http.MethodPost, base+"/?state="+url.QueryEscape(state)+"&code=x"); r.Status != 400 {
		t.Errorf("POST: status %d, want 400", r.Status)
	}
	for _, path := range []string{"/", "/?code=x"} {
		if r := e2eBrowse(t, http.MethodGet, base+path); r.Status != 404 {
			t.Errorf("GET %s: status %d, want 404", path, r.Status)
		}
	}
	if r := e2eBrowse(t, http.MethodGet, base+"/elsewhere?state="+url.QueryEscape(state)+"&code=x"); r.Status != 404 {
		t.Errorf("redirect to the wrong path: status %d, want 404", r.Status)
	}
	if r := e2eBrowse(t, http.MethodGet, base+"/?state=forged&code=x"); r.Status != 200 || strings.Contains(r.Body, processingPage) {
		t.Errorf("forged state: %d %q; want 200 and a page asking for a fresh token", r.Status, r.Body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := p.count(""); n != 1 {
		t.Errorf("%d token requests, want only a's code exchange", n)
	}
	if got := s.pendingURL(t, "b"); got != u {
		t.Errorf("b's pending request changed")
	}
	if got := s.showToken(t, "a"); got != tok {
		t.Errorf("a's token changed")
	}

	cbURL, r := s.follow(t, u)
	if r.Status != 200 || !strings.Contains(r.Body, processingPage) {
		t.Fatalf("b's genuine redirect after the bad ones: %d %q", r.Status, r.Body)
	}
	tokB := s.waitToken(t, "b", "")
	if r := e2eBrowse(t, http.MethodGet, cbURL); r.Status != 200 || strings.Contains(r.Body, processingPage) {
		t.Errorf("replayed redirect: %d %q; want 200 and a page asking for a fresh token", r.Status, r.Body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := p.count("authorization_code"); n != 2 {
		t.Errorf("%d code exchanges after a replayed redirect, want 2", n)
	}
	if s.showToken(t, "b") != tokB || s.showToken(t, "a") != tok {
		t.Errorf("tokens changed by a replayed redirect")
	}
}

// TestE2EBadProviderAnswers: a code exchange answered with HTML, truncated
// JSON, a 500, a JSON error or a non-bearer token is reported through
// error_notify_cmd, is not retried, and leaves the account ready for a new
// authorisation; a provider that hangs does not hold up the browser or
// other accounts.
func TestE2EBadProviderAnswers(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	errs := filepath.Join(t.TempDir(), "errors")
	s := startSrv(t, e2eConf(map[string]string{"error_notify_cmd": hookAppend(errs, "$PIZAUTH_ACCOUNT $PIZAUTH_MSG")},
		p.account("a", p.addClient(fakeClient{}), ""), p.account("b", p.addClient(fakeClient{}), "")))
	tokA := s.authorise(t, "a")
	errCount := func() int { return strings.Count("\n"+e2eRead(errs), "\nb ") }
	faults := []struct {
		name        string
		status      int
		contentType string
		body        string
	}{
		{"HTML", 200, "text/html", "<html><body>Sign-in is unavailable</body></html>"},
		{"truncated JSON", 200, "application/json", `{"access_token": "x-truncated", "token_ty`},
		{"500", 500, "application/json", `{"error":"server_error"}`},
		{"JSON error", 200, "application/json", `{"error":"invalid_grant","error_description":"Code expired"}`},
		{"non-bearer token", 200, "application/json", `{"access_token":"x-mac","token_type":"mac","expires_in":3600}`},
	}
	for i, f := range faults {
		before := errCount()
		p.failNext("authorization_code", 1, f.status, f.contentType, f.body)
		u := s.pendingURL(t, "b")
		_, r := s.follow(t, u)
		if r.Status != 200 || !strings.Contains(r.Body, processingPage) {
			t.Fatalf("%s: redirect answered %d %q", f.name, r.Status, r.Body)
		}
		s.waitFor(t, func() bool { return errCount() > before }, f.name+": error_notify_cmd")
		if out, _, code := s.run("show", "b"); code != 1 {
			t.Errorf("%s: show b printed %q after a failed exchange", f.name, out)
		}
		if n := p.count("authorization_code"); n != i+2 {
			t.Errorf("%s: %d code exchanges, want %d (no retry after an answer)", f.name, n, i+2)
		}
		if got := s.showToken(t, "a"); got != tokA {
			t.Errorf("%s: a's token changed", f.name)
		}
	}
	tokB := s.authorise(t, "b")

	release := p.hold("authorization_code")
	defer release()
	s.mustRun(t, "revoke", "b")
	u := s.pendingURL(t, "b")
	start := time.Now()
	_, r := s.follow(t, u)
	if r.Status != 200 || !strings.Contains(r.Body, processingPage) || time.Since(start) > 3*time.Second {
		t.Errorf("redirect while the provider hangs: %d %q after %v; want the page at once", r.Status, r.Body, time.Since(start))
	}
	if got := s.showToken(t, "a"); got != tokA {
		t.Errorf("a's token changed while b's provider hangs")
	}
	s.mustRun(t, "status")
	release()
	s.waitToken(t, "b", tokB)
}

// TestE2EShutdownRemovesSocket: shutdown, SIGTERM and SIGINT all end the
// server cleanly and remove the socket.
func TestE2EShutdownRemovesSocket(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	conf := e2eConf(nil, p.account("a", p.addClient(fakeClient{}), ""))
	stops := []struct {
		name string
		stop func(s *srv) error
	}{
		{"shutdown", func(s *srv) error {
			if out, errOut, code := s.run("shutdown"); code != 0 {
				return fmt.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			return nil
		}},
		{"SIGTERM", func(s *srv) error { return s.cmd.Process.Signal(syscall.SIGTERM) }},
		{"SIGINT", func(s *srv) error { return s.cmd.Process.Signal(os.Interrupt) }},
	}
	for _, st := range stops {
		s := startSrv(t, conf)
		if err := st.stop(s); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if err := s.waitExit(t); err != nil {
			t.Errorf("%s: server exited with %v, want status 0", st.name, err)
		}
		if _, err := os.Stat(s.socketPath()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: socket still there (%v)", st.name, err)
		}
		if _, errOut, code := s.run("status"); code != 1 || !strings.Contains(errOut, e2eNotRunning) {
			t.Errorf("%s: status afterwards: exit %d, stderr %q", st.name, code, errOut)
		}
	}
}

// TestE2ENoSecretsInLogs: after code exchanges, refreshes (good, transient
// and permanent failures), a failed exchange, a device-flow login, reloads
// and revokes at the highest verbosity, the server's log holds no token,
// code, verifier or client secret, and nothing that would let a reader
// finish someone's login: no state, device code or user code.
func TestE2ENoSecretsInLogs(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	c := p.addClient(fakeClient{Scopes: []string{"mail"}})
	pub := p.addClient(fakeClient{Public: true})
	dev := p.addClient(fakeClient{Device: true})
	conf := e2eConf(map[string]string{
		"token_event_cmd":  hookAppend(filepath.Join(dir, "events"), "$PIZAUTH_EVENT"),
		"error_notify_cmd": hookAppend(filepath.Join(dir, "errors"), "$PIZAUTH_MSG"),
		"auth_notify_cmd":  hookAppend(filepath.Join(dir, "notify"), "$PIZAUTH_URL"),
	}, p.account("a", c, ""), p.account("pub", pub, ""), p.account("dev", dev, ""))
	s := startSrv(t, conf)
	p.deviceScript(dev.ID, "authorization_pending", "ok")
	_, userCode := s.deviceCode(t, "dev")
	s.waitToken(t, "dev", "")
	tok := s.authorise(t, "a")
	s.authorise(t, "pub")
	s.mustRun(t, "refresh", "a")
	tok = s.waitToken(t, "a", tok)
	p.failNextJSON("refresh_token", 1, 503, `{"error":"temporarily_unavailable"}`)
	s.mustRun(t, "refresh", "a")
	s.waitToken(t, "a", tok)
	p.failNextJSON("refresh_token", 1, 400, `{"error":"invalid_grant"}`)
	s.mustRun(t, "refresh", "a")
	s.waitFor(t, func() bool { return s.state(t, "a") == "No access token" }, "invalidation")
	errs := filepath.Join(dir, "errors")
	s.waitFor(t, func() bool { return e2eRead(errs) != "" }, "the invalidation to be reported")
	reported := len(e2eRead(errs))
	p.failNextJSON("authorization_code", 1, 400, `{"error":"invalid_grant","error_description":"bad code"}`)
	_, r := s.follow(t, s.pendingURL(t, "a"))
	if r.Status != 200 {
		t.Fatalf("redirect answered %d", r.Status)
	}
	s.waitFor(t, func() bool { return len(e2eRead(errs)) > reported }, "the failed exchange to be reported")
	s.authorise(t, "a")
	s.mustRun(t, "reload")
	s.mustRun(t, "revoke", "a")
	s.mustRun(t, "revoke", "pub")
	s.mustRun(t, "shutdown")
	s.waitExit(t)

	logs := s.logs()
	if strings.TrimSpace(logs) == "" {
		t.Fatalf("the server logged nothing at -vvvv, so there is nothing to check")
	}
	for _, secret := range p.secretValues() {
		if strings.Contains(logs, secret) {
			t.Errorf("the server log contains a secret starting %q", secret[:min(len(secret), 12)])
		}
	}
	for _, prefix := range []string{prefixAccess, prefixRefresh, prefixCode, prefixSecret, prefixDevice} {
		if strings.Contains(logs, prefix) {
			t.Errorf("the server log contains %q", prefix)
		}
	}
	if len(s.states) < 4 {
		t.Fatalf("only %d authorisation URLs seen", len(s.states))
	}
	for _, st := range s.states {
		if strings.Contains(logs, st) {
			t.Errorf("the server log contains the state %q of a login", st)
		}
	}
	if !strings.Contains(logs, "state=…") {
		t.Errorf("the log shows no authorisation URL with its state hidden")
	}
	if userCode == "" || strings.Contains(logs, userCode) {
		t.Errorf("the server log contains the device user code %q", userCode)
	}
}

// TestE2ETokenResponseVariants: token_type in any case, expires_in as a
// string, absent (refresh_at_least) or absurdly large (clamped to a year),
// and a token without a refresh token, which lapses at expiry.
func TestE2ETokenResponseVariants(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	cs, ca, cl, cn := p.addClient(fakeClient{}), p.addClient(fakeClient{}), p.addClient(fakeClient{}), p.addClient(fakeClient{})
	cf, ce := p.addClient(fakeClient{}), p.addClient(fakeClient{})
	s := startSrv(t, e2eConf(map[string]string{"refresh_at_least": "2h"},
		p.account("str", cs, ""), p.account("absent", ca, ""), p.account("large", cl, ""), p.account("norefresh", cn, ""),
		p.account("float", cf, ""), p.account("exp", ce, "")))

	// Any JSON number: a fraction is truncated.
	for _, tc := range []struct{ acct, raw string }{{"float", "3599.9"}, {"exp", "3.6e3"}} {
		p.setExpiresIn(json.Number(tc.raw))
		s.authorise(t, tc.acct)
		if o, e := s.activeTimes(t, tc.acct); !e2eAbout(e.Sub(o), time.Hour, 5*time.Second) {
			t.Errorf("expires_in %s: token valid for %v", tc.raw, e.Sub(o))
		}
	}

	p.setTokenType("BEARER")
	p.setExpiresIn("3600")
	s.authorise(t, "str")
	if o, e := s.activeTimes(t, "str"); !e2eAbout(e.Sub(o), time.Hour, 5*time.Second) {
		t.Errorf("expires_in \"3600\": token valid for %v", e.Sub(o))
	}

	p.setTokenType("bearer")
	p.setExpiresIn(nil)
	s.authorise(t, "absent")
	if o, e := s.activeTimes(t, "absent"); !e2eAbout(e.Sub(o), 2*time.Hour, 5*time.Second) {
		t.Errorf("no expires_in with refresh_at_least = 2h: token valid for %v", e.Sub(o))
	}

	p.setExpiresIn(int64(3600) * 1e9)
	s.authorise(t, "large")
	if o, e := s.activeTimes(t, "large"); e.Sub(o) < 364*24*time.Hour || e.Sub(o) > 367*24*time.Hour {
		t.Errorf("expires_in in nanoseconds: token valid for %v, want a year", e.Sub(o))
	}

	p.setNoRefreshToken(true)
	p.setExpiresIn(3)
	s.authorise(t, "norefresh")
	s.waitFor(t, func() bool { return s.state(t, "norefresh") == "No access token" }, "the token without a refresh token to lapse")
	if n := p.count("refresh_token"); n != 0 {
		t.Errorf("%d refresh requests, want none", n)
	}
	s.pendingURL(t, "norefresh")
}

// `info` names the configuration file the running server reads, even when
// the server was started with -c and the client was not.
func TestE2EInfoNamesServersConfig(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	conf := e2eConf(nil, p.account("main", p.addClient(fakeClient{}), ""))
	s := newSrvEnv(t, conf)
	alt := filepath.Join(filepath.Dir(s.confPath), "other.conf")
	if err := os.WriteFile(alt, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t, "-c", alt)
	if inf := s.info(t); inf.ConfigFile != alt {
		t.Errorf("info -j config_file %q, want the server's %q", inf.ConfigFile, alt)
	}
	if inf := s.info(t, "-c", "/elsewhere.conf"); inf.ConfigFile != "/elsewhere.conf" {
		t.Errorf("info -j -c: config_file %q, want the file given", inf.ConfigFile)
	}
}
