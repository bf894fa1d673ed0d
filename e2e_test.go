package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The end-to-end tests build the real binary once and drive it as a user
// would: a server started with -d in a private HOME and XDG_RUNTIME_DIR, the
// client commands run as separate processes, a browser played by an
// http.Client, and fakeProvider (provider_test.go) as the OAuth2 provider.

// e2eBin is the pizauth binary built by TestMain.
var e2eBin string

func TestMain(m *testing.M) { os.Exit(e2eMain(m)) }

func e2eMain(m *testing.M) int {
	if role := os.Getenv(testRoleEnv); role != "" {
		return testRole(role)
	}
	flag.Parse()
	// The end-to-end tests spend their time waiting for the daemon's timers,
	// not computing, so run more of them at once than there are CPUs unless
	// the caller chose a -parallel value.
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		flag.Set("test.parallel", "8")
	}
	dir, err := os.MkdirTemp("", "pizauth-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	e2eBin = filepath.Join(dir, "pizauth")
	args := []string{"build", "-o", e2eBin}
	if os.Getenv("PIZAUTH_E2E_RACE") != "" {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building pizauth for the end-to-end tests failed: %v\n%s", err, out)
		return 1
	}
	// The root-only tests run both binaries as another user, who needs to
	// reach them. They are copied here, before any test starts a process:
	// a file being written while another goroutine forks can fail to run
	// with "text file busy".
	e2eRoleBin = filepath.Join(dir, "role")
	if err := copyExecutable(e2eRoleBin); err != nil || os.Chmod(dir, 0o711) != nil {
		fmt.Fprintf(os.Stderr, "copying the test binary: %v\n", err)
		return 1
	}
	return m.Run()
}

// e2eRoleBin is a copy of the test binary that any user may run (testRole).
var e2eRoleBin string

func copyExecutable(dst string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o755)
}

// e2eBuffer collects a process's output; safe for concurrent use.
type e2eBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *e2eBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *e2eBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// srv is one pizauth installation: a HOME with the config file, a runtime
// directory and, once started, a server running in the foreground (-d).
type srv struct {
	t        *testing.T
	root     string
	home     string
	runDir   string // XDG_RUNTIME_DIR
	confPath string // $HOME/.config/pizauth.conf, also passed with -c
	env      []string
	stderr   *e2eBuffer // the server's stdout and stderr

	cmd     *exec.Cmd
	exited  chan struct{}
	states  []string // the state of every authorisation URL seen
	waitErr error    // valid once exited is closed
}

// e2eShortDir makes a directory with a short path: Unix socket paths are
// limited to about 104 bytes and t.TempDir can be much longer.
func e2eShortDir(t *testing.T) string {
	t.Helper()
	base := ""
	if len(os.TempDir()) > 40 {
		base = "/tmp"
	}
	d, err := os.MkdirTemp(base, "pz")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// newSrvEnv prepares an installation with conf as its config file without
// starting a server.
func newSrvEnv(t *testing.T, conf string) *srv {
	t.Helper()
	root := e2eShortDir(t)
	s := &srv{
		t:      t,
		root:   root,
		home:   filepath.Join(root, "h"),
		runDir: filepath.Join(root, "r"),
		stderr: &e2eBuffer{},
		exited: make(chan struct{}),
	}
	s.confPath = filepath.Join(s.home, ".config", "pizauth.conf")
	for _, d := range []string{filepath.Dir(s.confPath), s.runDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s.writeConf(t, conf)
	s.env = []string{
		"HOME=" + s.home,
		"XDG_RUNTIME_DIR=" + s.runDir,
		"TMPDIR=" + root,
		"SHELL=/bin/sh",
		"PATH=" + os.Getenv("PATH"),
	}
	if u := os.Getenv("USER"); u != "" {
		s.env = append(s.env, "USER="+u)
	}
	return s
}

// writeConf replaces the config file.
func (s *srv) writeConf(t *testing.T, conf string) {
	t.Helper()
	if err := os.WriteFile(s.confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
}

// socketPath is where SPEC §2 puts the server's socket.
func (s *srv) socketPath() string { return filepath.Join(s.runDir, "pizauth", "pizauth.sock") }

// startServer writes conf and runs `pizauth server -d -vvvv -c conf` until
// the test ends. It returns once `pizauth status` succeeds.
func startSrv(t *testing.T, conf string, extraArgs ...string) *srv {
	t.Helper()
	s := newSrvEnv(t, conf)
	s.start(t, extraArgs...)
	return s
}

// start runs the server of a prepared installation; see startServer.
func (s *srv) start(t *testing.T, extraArgs ...string) {
	t.Helper()
	args := append([]string{"server", "-d", "-vvvv", "-c", s.confPath}, extraArgs...)
	cmd := exec.Command(e2eBin, args...)
	cmd.Env = s.env
	cmd.Stdout = s.stderr
	cmd.Stderr = s.stderr
	// A hook that outlives the server may hold the output pipe open.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pizauth server: %v", err)
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.exited:
			t.Fatalf("pizauth server exited during start-up: %v", s.waitErr)
		default:
		}
		if _, _, code := s.run("status"); code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pizauth status did not succeed within 10 s of starting the server")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop shuts the server down with `pizauth shutdown`, killing it if it has
// not exited 5 s later.
func (s *srv) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.run("shutdown")
	select {
	case <-s.exited:
		if s.waitErr != nil {
			s.t.Errorf("pizauth server did not exit cleanly after shutdown: %v", s.waitErr)
		}
	case <-time.After(5 * time.Second):
		s.t.Errorf("pizauth server still running 5 s after `pizauth shutdown`; killing it")
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// waitExit waits up to 5 s for the server process to exit.
func (s *srv) waitExit(t *testing.T) error {
	t.Helper()
	select {
	case <-s.exited:
		return s.waitErr
	case <-time.After(5 * time.Second):
		t.Fatalf("pizauth server still running after 5 s")
		return nil
	}
}

// logs is everything the server has written so far.
func (s *srv) logs() string { return s.stderr.String() }

// run runs a client command with the installation's environment. A client
// that takes longer than 15 s is killed and reported: SPEC §1 says a client
// never hangs.
func (s *srv) run(args ...string) (stdout, stderr string, exitCode int) {
	return s.runIn(nil, args...)
}

// runIn is run with stdin (nil: no input).
func (s *srv) runIn(stdin io.Reader, args ...string) (stdout, stderr string, exitCode int) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2eBin, args...)
	cmd.Env = s.env
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		s.t.Errorf("pizauth %s did not finish within 15 s", strings.Join(args, " "))
		return out.String(), errb.String(), -1
	case errors.Is(err, exec.ErrWaitDelay):
		s.t.Errorf("pizauth %s exited but something it started kept its stdout/stderr open", strings.Join(args, " "))
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		s.t.Errorf("running pizauth %s: %v", strings.Join(args, " "), err)
		return out.String(), errb.String(), -1
	}
	return out.String(), errb.String(), 0
}

// mustRun runs a client command and fails the test unless it exits 0.
func (s *srv) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := s.run(args...)
	if code != 0 {
		t.Fatalf("pizauth %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
	}
	return out
}

// e2eInfo is the JSON printed by `pizauth info -j` (SPEC §1).
type e2eInfo struct {
	InfoFormatVersion int            `json:"info_format_version"`
	PizauthVersion    string         `json:"pizauth_version"`
	ExecutedAs        string         `json:"executed_as"`
	CacheDirectory    string         `json:"cache_directory"`
	ConfigFile        string         `json:"config_file"`
	ServerRunning     bool           `json:"server_running"`
	ServerInfo        *e2eServerInfo `json:"server_info"`
}

type e2eServerInfo struct {
	HTTPPort    string  `json:"http_port"`
	HTTPSPort   string  `json:"https_port"`
	PubKey      *string `json:"https_pub_key"` // the original's; nil when absent
	Fingerprint string  `json:"https_cert_fingerprint"`
}

// info runs `pizauth info -j` and parses its output strictly: the types of
// the fields are part of the format.
func (s *srv) info(t *testing.T, args ...string) e2eInfo {
	t.Helper()
	out := s.mustRun(t, append([]string{"info", "-j"}, args...)...)
	var inf e2eInfo
	if err := json.Unmarshal([]byte(out), &inf); err != nil {
		t.Fatalf("pizauth info -j printed %q: %v", out, err)
	}
	return inf
}

// e2eWait polls cond every 50 ms until it holds, failing the test after d.
func e2eWait(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls cond for up to 15 s.
func (s *srv) waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	e2eWait(t, 15*time.Second, cond, what)
}

// statusLines runs `pizauth status` and returns its lines.
func (s *srv) statusLines(t *testing.T) []string {
	t.Helper()
	out := s.mustRun(t, "status")
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

// state is the state part of acct's `pizauth status` line.
func (s *srv) state(t *testing.T, acct string) string {
	t.Helper()
	lines := s.statusLines(t)
	for _, l := range lines {
		if st, ok := strings.CutPrefix(l, acct+": "); ok {
			return st
		}
	}
	t.Fatalf("no status line for %q in %q", acct, lines)
	return ""
}

var (
	e2eURLMsg     = regexp.MustCompile(`^ERROR - Token unavailable until authorised with URL (\S+)\n$`)
	e2eActiveLine = regexp.MustCompile(`^Active access token \(obtained (.+); expires (.+)\)$`)
)

// pendingURL runs `pizauth show acct`, which must fail with the
// authorisation URL, and returns the URL.
func (s *srv) pendingURL(t *testing.T, acct string) string {
	t.Helper()
	out, errOut, code := s.run("show", acct)
	m := e2eURLMsg.FindStringSubmatch(errOut)
	if code != 1 || out != "" || m == nil {
		t.Fatalf("pizauth show %s: exit %d, stdout %q, stderr %q; want exit 1 and the authorisation URL", acct, code, out, errOut)
	}
	s.states = append(s.states, e2eURLState(t, m[1]))
	return m[1]
}

// showToken runs `pizauth show acct` expecting a token.
func (s *srv) showToken(t *testing.T, acct string) string {
	t.Helper()
	out, errOut, code := s.run("show", acct)
	if code != 0 || errOut != "" || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("pizauth show %s: exit %d, stdout %q, stderr %q; want a token and a newline", acct, code, out, errOut)
	}
	return strings.TrimSuffix(out, "\n")
}

// e2eResp is what the browser saw.
type e2eResp struct {
	Status   int
	Body     string
	Location string
	Cert     *x509.Certificate // the server's leaf certificate over HTTPS
}

// e2eBrowse makes one request like a browser that does not follow
// redirects by itself. HTTPS certificates are not verified (pizauth's is
// self-signed); callers compare fingerprints instead.
func e2eBrowse(t *testing.T, method, u string) e2eResp {
	t.Helper()
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := e2eResp{Status: resp.StatusCode, Body: string(body), Location: resp.Header.Get("Location")}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		r.Cert = resp.TLS.PeerCertificates[0]
	}
	return r
}

// e2eFingerprint formats a certificate's SHA-256 as browsers show it.
func e2eFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

const processingPage = "pizauth processing authentication: you can safely close this page."

// follow plays the browser for an authorisation URL: the provider must
// redirect, and follow then requests the redirect from pizauth's listener,
// returning pizauth's answer and the callback URL. Over HTTPS it checks
// that the certificate served is the one `pizauth info` describes.
func (s *srv) follow(t *testing.T, authURL string) (callback string, r e2eResp) {
	t.Helper()
	first := e2eBrowse(t, http.MethodGet, authURL)
	if first.Status != http.StatusFound || first.Location == "" {
		t.Fatalf("provider answered %d %q to %s", first.Status, first.Body, authURL)
	}
	r = e2eBrowse(t, http.MethodGet, first.Location)
	if strings.HasPrefix(first.Location, "https:") {
		if r.Cert == nil {
			t.Fatalf("no certificate served at %s", first.Location)
		}
		inf := s.info(t)
		if inf.ServerInfo == nil || inf.ServerInfo.Fingerprint != e2eFingerprint(r.Cert.Raw) {
			t.Fatalf("certificate served has fingerprint %s; pizauth info -j says %+v", e2eFingerprint(r.Cert.Raw), inf.ServerInfo)
		}
	}
	return first.Location, r
}

// authorise takes an account from Empty to Active the way a user does:
// `pizauth show` prints the URL, the browser follows it, and `pizauth show`
// eventually prints the token, which authorise returns.
func (s *srv) authorise(t *testing.T, acct string) string {
	t.Helper()
	u := s.pendingURL(t, acct)
	_, r := s.follow(t, u)
	if r.Status != http.StatusOK || !strings.Contains(r.Body, processingPage) {
		t.Fatalf("pizauth's redirect listener answered %d %q", r.Status, r.Body)
	}
	return s.waitToken(t, acct, "")
}

// waitToken waits until `pizauth show acct` prints a token other than old.
func (s *srv) waitToken(t *testing.T, acct, old string) string {
	t.Helper()
	var tok string
	s.waitFor(t, func() bool {
		out, _, code := s.run("show", acct)
		if code != 0 {
			return false
		}
		tok = strings.TrimSuffix(out, "\n")
		return tok != old
	}, "pizauth show "+acct+" to print a new token")
	if !strings.HasPrefix(tok, prefixAccess) || strings.ContainsAny(tok, "\n ") {
		t.Fatalf("pizauth show %s printed %q, not a token issued by the provider", acct, tok)
	}
	return tok
}

// confQuote writes s as a config-language string: only \" and \\ escape.
func confQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// e2eConf builds a config file: fast global defaults suited to tests,
// overridden (or, with "", removed) by over, whose values are written
// verbatim, followed by the account blocks.
func e2eConf(over map[string]string, accounts ...string) string {
	settings := map[string]string{
		"http_listen":           `"127.0.0.1:0"`,
		"https_listen":          "none",
		"refresh_retry":         "1s",
		"refresh_before_expiry": "2s",
		"auth_notify_interval":  "1s",
	}
	for k, v := range over {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if settings[k] != "" {
			fmt.Fprintf(&b, "%s = %s;\n", k, settings[k])
		}
	}
	for _, a := range accounts {
		b.WriteString(a)
	}
	return b.String()
}

// hookAppend is a config string for a hook that appends one line to file:
// words expanded by the shell, e.g. "$PIZAUTH_ACCOUNT $PIZAUTH_EVENT".
func hookAppend(file, words string) string {
	return confQuote(fmt.Sprintf(`echo "%s" >> '%s'`, words, file))
}

// e2eRead returns a file's contents, "" if it does not exist yet.
func e2eRead(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// e2eLines returns a file's complete lines.
func e2eLines(path string) []string {
	s := e2eRead(path)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	} else {
		return nil
	}
	return strings.Split(s, "\n")
}

// e2eCompress drops consecutive duplicates.
func e2eCompress(in []string) []string { return slices.Compact(slices.Clone(in)) }

// e2eURLState extracts the state parameter of an authorisation URL.
func e2eURLState(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu.Query().Get("state")
}
