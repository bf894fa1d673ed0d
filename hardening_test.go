package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// These tests show that the server survives what a laptop and a hostile
// local environment throw at it: loose or foreign runtime directories,
// other users on the socket, secrets near the logs, hung hooks and token
// endpoints, and suspends.

// otherUID is the unprivileged user the root-only tests act as.
const otherUID = 65534

func skipUnlessRoot(t *testing.T, what string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skipf("needs root to %s (running as uid %d)", what, os.Getuid())
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// Both levels of the runtime directory end up 0700, whatever mode they had.
func TestRuntimeDirForcedPrivate(t *testing.T) {
	base := filepath.Join(t.TempDir(), "run")
	dir := filepath.Join(base, "pizauth")
	if err := prepareRuntimeDir(dir); err != nil {
		t.Fatalf("creating both levels: %v", err)
	}
	for _, d := range []string{base, dir} {
		if m := fileMode(t, d).Perm(); m != 0o700 {
			t.Errorf("new %s has mode %o, want 700", d, m)
		}
	}
	for _, d := range []string{base, dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := prepareRuntimeDir(dir); err != nil {
		t.Fatalf("fixing wide directories: %v", err)
	}
	for _, d := range []string{base, dir} {
		if m := fileMode(t, d).Perm(); m != 0o700 {
			t.Errorf("pre-existing %s left with mode %o, want 700", d, m)
		}
	}

	// Something that is not a directory is never followed or replaced.
	target := t.TempDir()
	link := filepath.Join(t.TempDir(), "pizauth")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	err := prepareRuntimeDir(link)
	if err == nil || !strings.Contains(err.Error(), "is a symbolic link: remove it or set XDG_RUNTIME_DIR") {
		t.Errorf("symlinked runtime directory: %v", err)
	}
}

// A runtime directory (either level) that belongs to another user is
// refused, left as it was, and the message says what to do.
func TestRuntimeDirOfAnotherUserRefused(t *testing.T) {
	skipUnlessRoot(t, "give a directory to another user")
	for _, level := range []string{"XDG_RUNTIME_DIR", "pizauth"} {
		base := filepath.Join(t.TempDir(), "run")
		dir := filepath.Join(base, "pizauth")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		victim := dir
		if level == "XDG_RUNTIME_DIR" {
			victim = base
		}
		if err := os.Chown(victim, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(victim, 0o755); err != nil {
			t.Fatal(err)
		}
		err := prepareRuntimeDir(dir)
		want := "The runtime directory '" + victim + "' belongs to uid 65534, not to you (uid 0): remove it or set XDG_RUNTIME_DIR to a private directory of your own"
		if err == nil || err.Error() != want {
			t.Errorf("%s owned by uid %d: got %v, want %q", level, otherUID, err, want)
		}
		if m := fileMode(t, victim).Perm(); m != 0o755 {
			t.Errorf("%s owned by another user changed to mode %o", level, m)
		}
	}
}

// TestE2ERuntimeDirAndSocketModes: the real server fixes a loose runtime
// directory, makes its socket 0600, and refuses to start in a directory
// someone else owns, saying so on the terminal whether detached or not.
func TestE2ERuntimeDirAndSocketModes(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	conf := e2eConf(nil, p.account("a", p.addClient(fakeClient{}), ""))
	s := newSrvEnv(t, conf)
	sockDir := filepath.Dir(s.socketPath())
	if err := os.Mkdir(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{s.runDir, sockDir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	s.start(t)
	for _, d := range []string{s.runDir, sockDir} {
		if m := fileMode(t, d); !m.IsDir() || m.Perm() != 0o700 {
			t.Errorf("%s has mode %v after start, want drwx------", d, m)
		}
	}
	if m := fileMode(t, s.socketPath()); m&os.ModeSocket == 0 || m.Perm() != 0o600 {
		t.Errorf("socket has mode %v, want srw-------", m)
	}

	if os.Getuid() != 0 {
		t.Logf("not root (uid %d): skipping the runtime directory owned by another user", os.Getuid())
		return
	}
	o := newSrvEnv(t, conf)
	oSock := filepath.Dir(o.socketPath())
	if err := os.Mkdir(oSock, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(oSock, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	want := "ERROR - The runtime directory '" + oSock + "' belongs to uid 65534, not to you (uid 0): remove it or set XDG_RUNTIME_DIR to a private directory of your own\n"
	for _, args := range [][]string{{"server", "-d", "-c", o.confPath}, {"server", "-c", o.confPath}} {
		out, errOut, code := o.run(args...)
		// Detached, a warning that syslog is unreachable may come first.
		if code != 1 || out != "" || !strings.HasSuffix(errOut, want) || strings.Count(errOut, "ERROR") != 1 {
			t.Errorf("pizauth %s in a foreign runtime directory: exit %d, stdout %q, stderr %q; want exit 1 and %q",
				strings.Join(args, " "), code, out, errOut, want)
		}
	}
	if _, err := os.Lstat(o.socketPath()); err == nil {
		t.Errorf("a socket was created in a runtime directory owned by another user")
	}
}

// TestE2EPeerCredRefusesOtherUser: even when the runtime directory and the
// socket are opened up to everybody, another user's client refuses to talk
// to a server that is not its own, a raw connection from that user is
// refused by the server's SO_PEERCRED check and gets no answer, and the
// owner still gets the token through the same opened-up path.
func TestE2EPeerCredRefusesOtherUser(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SO_PEERCRED is checked on Linux only")
	}
	skipUnlessRoot(t, "run a client as another user")
	t.Parallel()
	p := newFakeProvider(t)
	s := startSrv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	tok := s.authorise(t, "a")

	// The other user needs a path it may follow (TestMain opened the
	// binary's directory to it).
	bin := e2eBin
	for _, d := range []string{s.root, s.runDir, filepath.Dir(s.socketPath())} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(s.socketPath(), 0o666); err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_RUNTIME_DIR=" + s.runDir, "HOME=/nonexistent", "PATH=" + os.Getenv("PATH")}
	client := func(cred *syscall.Credential) (string, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "show", "a")
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("pizauth show did not finish within 15 s")
		}
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}

	out, errOut, code := client(&syscall.Credential{Uid: otherUID, Gid: otherUID})
	want := "ERROR - The runtime directory '" + s.runDir + "' belongs to uid 0, not to you (uid 65534)"
	if code != 1 || out != "" || !strings.HasPrefix(errOut, want) {
		t.Errorf("show as uid %d: exit %d, stdout %q, stderr %q; want %q", otherUID, code, out, errOut, want)
	}
	_, raw := runAs(t, otherUID, "dial "+s.socketPath())
	if line, _ := raw.ReadString('\n'); line != "no answer\n" {
		t.Errorf("a raw request from uid %d: %q, want no answer", otherUID, line)
	}
	refused := "refused a connection from uid " + strconv.Itoa(otherUID) + " (only uid 0 may connect)"
	s.waitFor(t, func() bool { return strings.Contains(s.logs(), refused) }, "the server to log the refusal")

	out, errOut, code = client(nil)
	if code != 0 || out != tok+"\n" {
		t.Errorf("show as root through the same opened-up path: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// runStdin runs a client command with stdin, returning its output.
func (s *srv) runStdin(t *testing.T, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return s.runIn(bytes.NewReader(stdin), args...)
}

// TestE2ENoSecretsAcrossRefreshDumpRestore: authorisation, scheduled and
// requested refreshes, a dump, a restart, a restore and a refresh with the
// restored refresh token, all at -vvvv: neither server's log nor any
// client's stderr holds an access or refresh token, a code, a verifier or
// a client secret, and the dump does not show them in clear either.
func TestE2ENoSecretsAcrossRefreshDumpRestore(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	c := p.addClient(fakeClient{Scopes: []string{"mail"}})
	basic := p.addClient(fakeClient{Basic: true})
	pub := p.addClient(fakeClient{Public: true})
	conf := e2eConf(map[string]string{
		"token_event_cmd":  hookAppend(filepath.Join(dir, "events"), "$PIZAUTH_ACCOUNT $PIZAUTH_EVENT"),
		"error_notify_cmd": hookAppend(filepath.Join(dir, "errors"), "$PIZAUTH_MSG"),
	}, p.account("a", c, ""), p.account("basic", basic, ""), p.account("pub", pub, ""))
	s := startSrv(t, conf)
	var clientErr strings.Builder
	run := func(stdin []byte, args ...string) string {
		t.Helper()
		out, errOut, code := s.runStdin(t, stdin, args...)
		clientErr.WriteString(errOut)
		if code != 0 {
			t.Fatalf("pizauth %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
		}
		return out
	}

	toks := map[string]string{}
	for _, name := range []string{"a", "basic", "pub"} {
		toks[name] = s.authorise(t, name)
	}
	// Scheduled refresh: 3 s tokens fall due 2 s before expiry.
	p.setExpiresIn(3)
	run(nil, "refresh", "a")
	toks["a"] = s.waitToken(t, "a", toks["a"])
	toks["a"] = s.waitToken(t, "a", toks["a"])
	p.setExpiresIn(3600)
	s.waitFor(t, func() bool { o, e := s.activeTimes(t, "a"); return e.Sub(o) > time.Minute }, "a long-lived token again")
	toks["a"] = s.showToken(t, "a")
	run(nil, "refresh", "basic")
	toks["basic"] = s.waitToken(t, "basic", toks["basic"])

	dump := run(nil, "dump")
	for _, secret := range p.secretValues() {
		if strings.Contains(dump, secret) {
			t.Errorf("the dump shows a secret starting %q in clear", secret[:min(len(secret), 12)])
		}
	}
	run(nil, "shutdown")
	if err := s.waitExit(t); err != nil {
		t.Fatalf("server exit: %v", err)
	}

	// A reboot: a new server on the same installation, then the restore.
	s1 := s
	s = &srv{t: t, root: s1.root, home: s1.home, runDir: s1.runDir, confPath: s1.confPath, env: s1.env,
		stderr: &e2eBuffer{}, exited: make(chan struct{})}
	s.start(t)
	if got := s.state(t, "a"); got != "No access token" {
		t.Fatalf("a fresh server has state %q for a", got)
	}
	if out := run([]byte(dump), "restore"); out != "" {
		t.Errorf("restore printed %q", out)
	}
	for name, tok := range toks {
		if got := s.showToken(t, name); got != tok {
			t.Errorf("restored %s: token %q, want %q", name, got, tok)
		}
	}
	run(nil, "refresh", "a")
	s.waitToken(t, "a", toks["a"])
	run(nil, "refresh", "pub")
	s.waitToken(t, "pub", toks["pub"])
	run(nil, "shutdown")
	if err := s.waitExit(t); err != nil {
		t.Fatalf("second server exit: %v", err)
	}

	if n := p.count("refresh_token"); n < 6 {
		t.Errorf("%d refreshes, want at least 6 (scheduled, requested and after the restore)", n)
	}
	if e := e2eRead(filepath.Join(dir, "errors")); e != "" {
		t.Errorf("error_notify_cmd ran: %q", e)
	}
	if !strings.Contains(s1.logs(), "token_refreshed") || !strings.Contains(s.logs(), "Restored 3 of the dump's accounts") {
		t.Fatalf("the logs do not show the refreshes and the restore, so they prove nothing:\n%s\n%s", s1.logs(), s.logs())
	}
	secrets := p.secretValues()
	for what, text := range map[string]string{"the first server's log": s1.logs(), "the second server's log": s.logs(), "client stderr": clientErr.String()} {
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains a secret starting %q", what, secret[:min(len(secret), 12)])
			}
		}
		for _, prefix := range []string{prefixAccess, prefixRefresh, prefixCode, prefixSecret} {
			if strings.Contains(text, prefix) {
				t.Errorf("%s contains %q", what, prefix)
			}
		}
	}
}

// testClock is an injectable pair of clocks safe to read from the
// refresher's goroutine while the test moves it. advance moves only the
// wall clock, as a suspended laptop does.
type testClock struct{ ns, mono atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *testClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) stamp() stamp            { return stamp{c.now(), time.Duration(c.mono.Load())} }
func (c *testClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// runningState makes a state for accts on a test clock and runs its
// refresher until the test ends.
func runningState(t *testing.T, prov *provider, accts ...*Account) (*state, *testClock) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := newState(ctx, &Config{Accounts: accts}, prov)
	clock := newTestClock()
	s.clock = clock.stamp
	done := make(chan struct{})
	go func() {
		s.refresher(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		s.events.close(time.Second)
	})
	return s, clock
}

// accountState reads one account's fields under the lock.
func accountState(s *state, name string) acctState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.accts[name]
}

// hangingEndpoint is a token endpoint that never answers. Each request's
// arrival is announced on the returned channel.
func hangingEndpoint(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 16)
	srv := hangingServer(t, func(http.ResponseWriter) { arrived <- struct{}{} })
	return srv, arrived
}

func waitArrival(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A token endpoint that never answers holds up only its own account: with
// SPEC's 30 s timeout still running on the hung request, another account
// due at the same moment is refreshed at once.
func TestHungTokenEndpointDelaysNobody(t *testing.T) {
	hang, arrived := hangingEndpoint(t)
	ok, seen := fakeServer(t, jsonReply(200, okBody))
	stuck, fine := schedAccount("stuck"), schedAccount("fine")
	stuck.TokenURI, fine.TokenURI = hang.URL, ok.URL
	prov := newProvider()
	s, clock := runningState(t, prov, stuck, fine)
	activate(s, "stuck", clock.now(), time.Hour, "rt-stuck")
	activate(s, "fine", clock.now(), time.Hour, "rt-fine")

	clock.advance(2 * time.Hour)
	s.wake()
	waitArrival(t, arrived, "the hung endpoint to receive its refresh")
	e2eWait(t, 10*time.Second, func() bool { return accountState(s, "fine").access == tAccess }, "the other account's refresh")
	if n := len(seen()); n != 1 {
		t.Errorf("%d refresh requests for the healthy account, want 1", n)
	}
	if a := accountState(s, "stuck"); !a.refreshing || a.access != "access-stuck" || prov.timeout != 30*time.Second {
		t.Errorf("the hung refresh should still be waiting out its %v timeout: refreshing=%v", prov.timeout, a.refreshing)
	}
}

// The provider timeout (30 s in production, injected here) turns a hung
// endpoint into a transient failure: the token is kept, the failure logged
// without secrets, and the refresh retried refresh_retry later.
func TestHungTokenEndpointTimesOut(t *testing.T) {
	logs := captureLog(t, lvlWarn)
	hang, arrived := hangingEndpoint(t)
	stuck := schedAccount("stuck")
	stuck.TokenURI = hang.URL
	prov := newProvider()
	prov.timeout = 100 * time.Millisecond
	s, clock := runningState(t, prov, stuck)
	activate(s, "stuck", clock.now(), time.Hour, "rt-stuck")

	clock.advance(2 * time.Hour)
	s.wake()
	waitArrival(t, arrived, "the first refresh")
	e2eWait(t, 10*time.Second, func() bool { a := accountState(s, "stuck"); return a.failures == 1 && !a.refreshing }, "the timeout")
	if a := accountState(s, "stuck"); a.kind != kindActive || a.refresh != "rt-stuck" {
		t.Errorf("a timed-out refresh dropped the token: kind %v", a.kind)
	}
	host := strings.TrimPrefix(hang.URL, "http://")
	if want := "Transient error refreshing 'stuck' (attempt 1), will retry: " + host + " did not answer within 100ms"; !strings.Contains(logs.String(), want) {
		t.Errorf("log %q does not contain %q", logs.String(), want)
	}
	if strings.Contains(logs.String(), "rt-stuck") {
		t.Errorf("log contains the refresh token")
	}
	clock.advance(stuck.RefreshRetry)
	s.wake()
	waitArrival(t, arrived, "the retry refresh_retry later")
}

// TestRefresherCatchesUpAfterSuspend: timers stop while a laptop sleeps, so
// the refresher must judge due times by the wall clock. After a jump past
// the due time, the very next wake-up sends the refresh; the test finishes
// long before the refresher's 37 s timer could have fired, so it was that
// one wake-up.
func TestRefresherCatchesUpAfterSuspend(t *testing.T) {
	ok, seen := fakeServer(t, jsonReply(200, okBody))
	acct := schedAccount("a")
	acct.TokenURI = ok.URL
	s, clock := runningState(t, newProvider(), acct)
	activate(s, "a", clock.now(), time.Hour, "rt")
	s.wake()

	clock.advance(5 * time.Hour) // the lid was closed
	start := time.Now()
	s.wake() // the lid was opened: the refresher's timer fires
	e2eWait(t, maxSleep/4, func() bool { return accountState(s, "a").access == tAccess }, "the refresh after the jump")
	if d := time.Since(start); d >= maxSleep {
		t.Fatalf("refresh took %v, which a timer could explain", d)
	}
	reqs := seen()
	if len(reqs) != 1 || reqs[0].form.Get("grant_type") != "refresh_token" || reqs[0].form.Get("refresh_token") != "rt" {
		t.Fatalf("token requests after the jump: %+v", reqs)
	}
	a := accountState(s, "a")
	if !a.obtained.wall.Equal(clock.now()) || !a.expiry.Equal(clock.now().Add(3599*time.Second)) {
		t.Errorf("refreshed token obtained %v, expires %v; want the post-suspend clock", a.obtained, a.expiry)
	}
}

// inprocServer runs the whole server in this process (so that -race sees
// the server's side too) with its socket in a fresh runtime directory,
// which the test's environment names so that the real client binary finds
// it too.
func inprocServer(t *testing.T, conf string) (srv *server, sock, confPath string) {
	t.Helper()
	root := e2eShortDir(t)
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(root, "r"))
	confPath = filepath.Join(root, "pizauth.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(confPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.shutdown()
		srv.st.events.close(time.Second)
	})
	return srv, srv.sockPath, confPath
}

func inprocShow(sock, acct string) (string, error) {
	vals, err := roundTripTo(sock, 10*time.Second, []byte("show"), nil, []byte(acct))
	if err != nil {
		return "", err
	}
	if len(vals) != 1 {
		return "", io.ErrUnexpectedEOF
	}
	return string(vals[0]), nil
}

// inprocAuthorise authorises acct on an in-process server as a user would:
// the URL from `show`, the browser to the provider and back, and `show`
// again until it prints a token.
func inprocAuthorise(t *testing.T, sock, acct string) string {
	t.Helper()
	_, err := inprocShow(sock, acct)
	u, ok := strings.CutPrefix(errString(err), "Token unavailable until authorised with URL ")
	if !ok {
		t.Fatalf("show %s: %v; want the authorisation URL", acct, err)
	}
	first := e2eBrowse(t, http.MethodGet, u)
	if r := e2eBrowse(t, http.MethodGet, first.Location); r.Status != http.StatusOK {
		t.Fatalf("redirect answered %d %q", r.Status, r.Body)
	}
	var tok string
	e2eWait(t, 15*time.Second, func() bool {
		tok, err = inprocShow(sock, acct)
		return err == nil
	}, "the token for "+acct)
	return tok
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestHungHookKilledServerCarriesOn: token_event_cmd leaves a background
// process holding the server's stderr open and waits for it. At its timeout
// (10 s in production, injected here) the hook and that process are killed,
// the server answers throughout, and the next event's hook still runs.
func TestHungHookKilledServerCarriesOn(t *testing.T) {
	logs := captureLog(t, lvlWarn)
	dir := t.TempDir()
	events, pids := filepath.Join(dir, "events"), filepath.Join(dir, "pids")
	hook := `sleep 30 & echo $! >> '` + pids + `'; echo "$PIZAUTH_EVENT" >> '` + events + `'; wait`
	p := newFakeProvider(t)
	srv, sock, _ := inprocServer(t, e2eConf(map[string]string{"token_event_cmd": confQuote(hook)},
		p.account("a", p.addClient(fakeClient{}), "")))
	q := srv.st.events
	q.mu.Lock()
	q.timeout = 300 * time.Millisecond
	q.mu.Unlock()

	tok := inprocAuthorise(t, sock, "a")
	e2eWait(t, 10*time.Second, func() bool { return len(e2eLines(pids)) == 1 }, "the token_new hook to start")
	if got, err := inprocShow(sock, "a"); err != nil || got != tok {
		t.Errorf("show while the hook hangs: %q, %v", got, err)
	}
	if _, err := roundTripTo(sock, 10*time.Second, []byte("revoke"), []byte("a")); err != nil {
		t.Fatalf("revoke while the hook hangs: %v", err)
	}
	// Each hook records its background pid before its event.
	e2eWait(t, 10*time.Second, func() bool { return len(e2eLines(events)) == 2 }, "the token_revoked hook to run after the first one's timeout")
	if got := e2eLines(events); !slices.Equal(got, []string{"token_new", "token_revoked"}) {
		t.Errorf("events %q, want token_new then token_revoked", got)
	}
	for _, line := range e2eLines(pids) {
		pid, err := strconv.Atoi(line)
		if err != nil {
			t.Fatalf("pid file: %q", line)
		}
		if !waitGone(t, pid) {
			t.Errorf("background process %d of a timed-out hook survived", pid)
		}
	}
	e2eWait(t, 10*time.Second, func() bool {
		return strings.Count(logs.String(), "token_event_cmd for account 'a' killed after 300ms timeout") == 2
	}, "both timeouts to be logged")
	if _, err := inprocShow(sock, "a"); err == nil || !strings.HasPrefix(err.Error(), "Token unavailable until authorised with URL ") {
		t.Errorf("show after the revoke: %v", err)
	}
}
