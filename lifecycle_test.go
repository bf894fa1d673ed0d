package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startCmd runs cmd, some way of running `pizauth server -d` for the
// prepared installation s, as the test's server: like s.start, it returns
// once `pizauth status` succeeds, and stops the server when the test ends.
func (s *srv) startCmd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Env = s.env
	if cmd.Stdout == nil {
		cmd.Stdout, cmd.Stderr = s.stderr, s.stderr
	}
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %q: %v", cmd.Args, err)
	}
	s.cmd = cmd
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pizauth server output:\n%s", s.stderr.String())
		}
	})
	t.Cleanup(s.stop)
	s.waitFor(t, func() bool {
		select {
		case <-s.exited:
			t.Fatalf("pizauth server exited during start-up: %v", s.waitErr)
		default:
		}
		_, _, code := s.run("status")
		return code == 0
	}, "the server to answer")
}

// logPipeReader collects what the server writes to a pipe, once started.
type logPipeReader struct {
	buf  e2eBuffer
	done chan struct{}
}

func readPipe(r *os.File) *logPipeReader {
	lr := &logPipeReader{done: make(chan struct{})}
	go func() {
		defer close(lr.done)
		io.Copy(&lr.buf, r)
	}()
	return lr
}

// TestE2EStalledLogNeverStallsServer: a server whose stderr is a pipe that
// nobody reads (a stalled journald does the same) keeps answering after
// thousands of log lines; once the pipe is read again, the log says how
// many lines it dropped; and when the reader goes away for good, the server
// lives on rather than dying of SIGPIPE.
func TestE2EStalledLogNeverStallsServer(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := newSrvEnv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(e2eBin, "server", "-d", "-vvvv", "-c", s.confPath)
	cmd.Stdout, cmd.Stderr = w, w
	s.startCmd(t, cmd)
	w.Close()

	// Each request logs a TRACE line of about 60 bytes: 4000 of them are
	// several times what a pipe holds.
	sock := s.socketPath()
	status := func(n int, what string) {
		for i := range n {
			if _, err := roundTripTo(sock, 5*time.Second, []byte("status"), nil); err != nil {
				t.Fatalf("status request %d %s: %v", i+1, what, err)
			}
		}
	}
	status(4000, "with stderr full")
	if out, errOut, code := s.run("status"); code != 0 || out != "a: No access token\n" {
		t.Fatalf("pizauth status with stderr full: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	lr := readPipe(r)
	s.waitFor(t, func() bool {
		return strings.Contains(lr.buf.String(), " log lines dropped: the log output could not keep up")
	},
		"the log to report the lines it dropped")

	r.Close()
	<-lr.done
	status(500, "after stderr's reader went away")
	s.mustRun(t, "status")
	// Shutting down flushes the log, so a server that SIGPIPE kills
	// cannot have exited cleanly by then.
	s.mustRun(t, "shutdown")
	if err := s.waitExit(t); err != nil {
		t.Errorf("after stderr's reader went away, the server ended with %v", err)
	}
}

// TestE2EShutdownRunsQueuedEventsFirst: `revoke` then `shutdown`: the
// token_revoked hook still reaches the server to save a dump, which then
// restores; new work is refused meanwhile; and `pizauth shutdown` returns
// only once the server has gone.
func TestE2EShutdownRunsQueuedEventsFirst(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	saved, refused := filepath.Join(dir, "saved"), filepath.Join(dir, "refused")
	// The hook waits until the shutdown has begun, so that its dump is
	// taken while the server is stopping.
	hook := fmt.Sprintf(`[ "$PIZAUTH_EVENT" = token_revoked ] || exit 0; i=0; `+
		`until '%[1]s' reload 2> '%[3]s'; [ -s '%[3]s' ] || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.05; done; `+
		`'%[1]s' dump > '%[2]s.tmp' && mv '%[2]s.tmp' '%[2]s'`, e2eBin, saved, refused)
	conf := e2eConf(map[string]string{"token_event_cmd": confQuote(hook)},
		p.account("a", p.addClient(fakeClient{}), ""), p.account("b", p.addClient(fakeClient{}), ""))
	s := startSrv(t, conf)
	s.authorise(t, "a")
	tokB := s.authorise(t, "b")

	s.mustRun(t, "revoke", "a")
	s.mustRun(t, "shutdown")
	if _, err := os.Stat(s.socketPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there when pizauth shutdown returned (%v)", err)
	}
	if err := s.waitExit(t); err != nil {
		t.Errorf("server exited with %v", err)
	}
	if got := e2eRead(refused); !strings.Contains(got, "ERROR - pizauth authenticator is shutting down") {
		t.Errorf("reload while shutting down said %q", got)
	}
	dump, err := os.ReadFile(saved)
	if err != nil || len(dump) == 0 {
		t.Fatalf("the token_revoked hook saved no dump (%v); server log:\n%s", err, s.logs())
	}

	s2 := startSrv(t, conf)
	if _, errOut, code := s2.runIn(bytes.NewReader(dump), "restore"); code != 0 {
		t.Fatalf("restoring the dump saved at shutdown: exit %d, %q", code, errOut)
	}
	if got := s2.showToken(t, "b"); got != tokB {
		t.Errorf("restored b shows %q, want %q", got, tokB)
	}
	s2.pendingURL(t, "a") // revoked before the dump: not brought back
}

// TestE2EShutdownKeepsRotatedToken: `pizauth shutdown` while a refresh is
// at a provider that rotates refresh tokens, and that carries the refresh
// out even if pizauth hangs up: the server waits for the answer, the
// token_event_cmd that saves a dump runs with it, and that dump, restored
// into a new server, refreshes, as its refresh token is the live one.
func TestE2EShutdownKeepsRotatedToken(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	saved, events := filepath.Join(dir, "saved"), filepath.Join(dir, "events")
	hook := fmt.Sprintf(`echo "$PIZAUTH_EVENT" >> '%[3]s'; '%[1]s' dump > '%[2]s.tmp' && mv '%[2]s.tmp' '%[2]s'`, e2eBin, saved, events)
	c := p.addClient(fakeClient{})
	acct := p.account("a", c, "")
	s := startSrv(t, e2eConf(map[string]string{"token_event_cmd": confQuote(hook)}, acct))
	s.authorise(t, "a")
	s.waitFor(t, func() bool { return len(e2eLines(events)) == 1 }, "token_new to be saved")

	p.delayNext("refresh_token", 2*time.Second)
	s.mustRun(t, "refresh", "a")
	s.waitFor(t, func() bool { return p.count("refresh_token") == 1 }, "the refresh to reach the provider")
	time.Sleep(500 * time.Millisecond)
	s.mustRun(t, "shutdown")
	if err := s.waitExit(t); err != nil {
		t.Errorf("server exited with %v", err)
	}
	if got := e2eLines(events); !slices.Equal(got, []string{"token_new", "token_refreshed"}) {
		t.Errorf("token events %q; want token_new, then token_refreshed from the refresh shutdown waited for", got)
	}

	s2 := startSrv(t, e2eConf(nil, acct))
	if _, errOut, code := s2.runIn(strings.NewReader(e2eRead(saved)), "restore"); code != 0 {
		t.Fatalf("restoring the dump saved at shutdown: exit %d, %q", code, errOut)
	}
	tok := s2.showToken(t, "a")
	if issued := p.tokens(c.ID); tok != issued[len(issued)-1] {
		t.Errorf("the restored token is not the one the refresh at shutdown gave")
	}
	s2.mustRun(t, "refresh", "a")
	s2.waitToken(t, "a", tok)
}

// TestE2EShutdownRefusesNewWork: once shutdown has begun, requests for new
// work get a clear refusal, while status, show and dump still answer.
func TestE2EShutdownRefusesNewWork(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	dir := t.TempDir()
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	hook := fmt.Sprintf(`echo x > '%s'; while [ ! -e '%s' ]; do sleep 0.05; done`, started, release)
	notes := filepath.Join(dir, "notes")
	s := startSrv(t, e2eConf(map[string]string{"token_event_cmd": confQuote(hook), "auth_notify_cmd": hookAppend(notes, "$PIZAUTH_ACCOUNT")},
		p.account("a", p.addClient(fakeClient{}), ""), p.account("b", p.addClient(fakeClient{}), "")))
	tok := s.authorise(t, "a")
	s.waitFor(t, func() bool { return e2eRead(started) != "" }, "the token_new hook to start")
	notified := e2eRead(notes)

	shutdownDone := make(chan int, 1)
	go func() { _, _, code := s.run("shutdown"); shutdownDone <- code }()
	s.waitFor(t, func() bool { return strings.Contains(s.logs(), "INFO Shutting down") }, "shutdown to begin")
	for _, args := range [][]string{{"refresh", "a"}, {"reload"}, {"revoke", "a"}} {
		if _, errOut, code := s.run(args...); code != 1 || !strings.Contains(errOut, "shutting down") {
			t.Errorf("%q while shutting down: exit %d, stderr %q", args, code, errOut)
		}
	}
	if _, errOut, code := s.runIn(strings.NewReader("x"), "restore"); code != 1 || !strings.Contains(errOut, "shutting down") {
		t.Errorf("restore while shutting down: exit %d, stderr %q", code, errOut)
	}
	if got := s.showToken(t, "a"); got != tok {
		t.Errorf("show while shutting down: %q, want %q", got, tok)
	}
	// No login starts whose redirect nobody would receive.
	if _, errOut, code := s.run("show", "b"); code != 1 || !strings.Contains(errOut, "shutting down") {
		t.Errorf("show of an account without a token while shutting down: exit %d, stderr %q", code, errOut)
	}
	s.mustRun(t, "status")
	s.mustRun(t, "dump")
	select {
	case code := <-shutdownDone:
		t.Fatalf("pizauth shutdown returned (exit %d) while the server was still running a hook", code)
	default:
	}
	os.WriteFile(release, nil, 0o600)
	if code := <-shutdownDone; code != 0 {
		t.Errorf("pizauth shutdown: exit %d", code)
	}
	if err := s.waitExit(t); err != nil {
		t.Errorf("server exited with %v", err)
	}
	if got := e2eRead(notes); got != notified {
		t.Errorf("auth_notify_cmd ran during shutdown: %q", got)
	}
}

// TestE2ENoInheritedDescriptors: descriptors that whoever started `pizauth
// server` left open reach neither the server nor its hooks, so a pipe the
// launcher waits on sees end-of-file as soon as `pizauth server` returns.
func TestE2ENoInheritedDescriptors(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc/self/fd to list a hook's descriptors")
	}
	for _, detached := range []bool{true, false} {
		p := newFakeProvider(t)
		fds := filepath.Join(t.TempDir(), "fds")
		// ls, a child of the hook's shell, inherits what the shell has
		// (bar descriptors the shell itself made close-on-exec) and adds
		// the directory it reads.
		hook := fmt.Sprintf(`ls -l /proc/self/fd > '%[1]s.tmp' && mv '%[1]s.tmp' '%[1]s'`, fds)
		s := newSrvEnv(t, e2eConf(map[string]string{"startup_cmd": confQuote(hook)},
			p.account("a", p.addClient(fakeClient{}), "")))
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		extra := []*os.File{w, w, w, w, w} // descriptors 3 to 7
		if detached {
			t.Cleanup(func() { s.stopDetached(t) })
			cmd := exec.Command(e2eBin, "server", "-c", s.confPath)
			cmd.Env, cmd.ExtraFiles = s.env, extra
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("pizauth server: %v, %q", err, out)
			}
			w.Close()
			r.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := r.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("a pipe open when pizauth server started: read %d bytes, %v; want end-of-file once it returned", n, err)
			}
		} else {
			cmd := exec.Command(e2eBin, "server", "-d", "-c", s.confPath)
			cmd.ExtraFiles = extra
			s.startCmd(t, cmd)
			w.Close()
		}
		s.waitFor(t, func() bool { return e2eRead(fds) != "" }, "startup_cmd to list its descriptors")
		var got []string
		for _, line := range e2eLines(fds) {
			fd, target, ok := strings.Cut(line, " -> ")
			if ok && !strings.HasPrefix(target, "/proc/") {
				got = append(got, fd[strings.LastIndexByte(fd, ' ')+1:])
			}
		}
		if !slices.Equal(got, []string{"0", "1", "2"}) {
			t.Errorf("detached %v: startup_cmd has descriptors %q, want 0, 1 and 2", detached, got)
		}
	}
}

// staleSocket leaves a socket file that nobody listens on, as a crashed
// server does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
}

// TestE2EStartHoldsRuntimeLock: a server starting while another holds the
// runtime directory's lock (it is starting too, or running) leaves the
// socket alone and says a server is running.
func TestE2EStartHoldsRuntimeLock(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := newSrvEnv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	staleSocket(t, s.socketPath())
	f, err := os.OpenFile(filepath.Join(filepath.Dir(s.socketPath()), "pizauth.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"server", "-d", "-c", s.confPath}, {"server", "-c", s.confPath}} {
		if _, errOut, code := s.run(args...); code != 1 || !strings.Contains(errOut, "pizauth authenticator already running") {
			t.Errorf("%q while the lock is held: exit %d, stderr %q", args, code, errOut)
		}
		if _, err := os.Stat(s.socketPath()); err != nil {
			t.Errorf("%q removed the socket without holding the lock (%v)", args, err)
		}
	}
	f.Close()
	s.start(t)
	s.pendingURL(t, "a")
}

// TestE2EConcurrentStartsAfterCrash: two servers started at once over a
// stale socket: one runs and answers, the other says so.
func TestE2EConcurrentStartsAfterCrash(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	conf := e2eConf(nil, p.account("a", p.addClient(fakeClient{}), ""))
	for round := range 5 {
		s := newSrvEnv(t, conf)
		staleSocket(t, s.socketPath())
		var wg sync.WaitGroup
		codes, errs := make([]int, 2), make([]string, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i], codes[i] = s.run("server", "-c", s.confPath)
			}()
		}
		wg.Wait()
		slices.Sort(codes)
		if !slices.Equal(codes, []int{0, 1}) {
			t.Errorf("round %d: exit statuses %v, want one 0 and one 1; stderr %q", round, codes, errs)
		}
		if _, errOut, code := s.run("status"); code != 0 {
			t.Errorf("round %d: the server that started does not answer: %q", round, errOut)
		}
		s.stopDetached(t)
	}
}

// TestCertLeavesOutUnencodableHostname: a host name that a certificate
// cannot hold as it is does not stop the HTTPS listener from starting; an
// ordinary one is in the certificate.
func TestCertLeavesOutUnencodableHostname(t *testing.T) {
	old := hostname
	t.Cleanup(func() { hostname = old })
	for _, tc := range []struct {
		name string
		in   bool
	}{{"mailhost.example", true}, {"bücher-pc", false}, {"пк", false}, {"", false}} {
		hostname = func() (string, error) { return tc.name, nil }
		cert, _, _, err := selfSignedCert()
		if err != nil {
			t.Errorf("hostname %q: %v", tc.name, err)
			continue
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(leaf.DNSNames, "localhost") || slices.Contains(leaf.DNSNames, tc.name) != tc.in {
			t.Errorf("hostname %q: certificate names %q", tc.name, leaf.DNSNames)
		}
	}
}

// stuckWriter blocks every write until release is closed, as a pipe that
// nobody reads does.
type stuckWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	out     syncBuffer
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return w.out.Write(p)
}

// TestLogNeverBlocks: with the output stuck, logging returns at once and
// lines beyond the queue are counted; once the output moves again, what was
// queued is written after a line saying how many were dropped.
func TestLogNeverBlocks(t *testing.T) {
	w := &stuckWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l := &logger{w: w}
	l.setLevel(lvlInfo)
	l.logf(lvlInfo, "line 0")
	<-w.entered
	for i := 1; i <= logQueueLen+99; i++ {
		l.logf(lvlInfo, "line %d", i)
	}
	l.logf(lvlDebug, "not at this level")
	if l.flush(50 * time.Millisecond) {
		t.Fatal("flush reported success with the output stuck")
	}
	close(w.release)
	if !l.flush(5 * time.Second) {
		t.Fatal("flush failed with the output moving")
	}
	lines := strings.Split(strings.TrimSuffix(w.out.String(), "\n"), "\n")
	if len(lines) != logQueueLen+2 || !strings.HasSuffix(lines[0], "INFO line 0") ||
		!strings.HasSuffix(lines[1], "ERROR 99 log lines dropped: the log output could not keep up") ||
		!strings.HasSuffix(lines[len(lines)-1], fmt.Sprintf("INFO line %d", logQueueLen)) {
		t.Errorf("%d lines written, starting %q and ending %q", len(lines), lines[:2], lines[len(lines)-1])
	}
}
