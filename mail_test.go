package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests put pizauth in front of a real mail server: Dovecot, whose
// oauth2 passdb asks the test provider (RFC 7662 introspection) about every
// token it is given, and the mail programs users run (mbsync, getmail,
// NeoMutt, curl), each configured with the README's snippet and getting its
// token only from `pizauth show`.

// mailUser is the mailbox owner: the login name the programs send and the
// user name the provider reports for the client's tokens.
const mailUser = "someone@example.com"

// dovecot is one Dovecot instance living entirely in a temporary directory.
type dovecot struct {
	t        *testing.T
	dir      string
	port     int // IMAP without TLS
	tlsPort  int // IMAPS, for NeoMutt, which offers OAuth only over TLS
	certFile string
	inbox    string // the Maildir of the user's INBOX
	logFile  string
	uid, gid int // owner of the mail files
	cmd      *exec.Cmd
	exited   chan struct{}
	stdout   *e2eBuffer
}

// mailMessage is test message n, with a Message-ID the tests look for.
func mailMessage(n int) string {
	return fmt.Sprintf("From: friend@example.org\r\nTo: %s\r\nSubject: pizauth test message %d\r\n"+
		"Message-ID: <msg-%d@pizauth.test>\r\nDate: Sat, 28 Nov 2026 09:00:00 +0000\r\n\r\nbody of message %d\r\n", mailUser, n, n, n)
}

// startDovecot runs Dovecot in the foreground (-F) until the test ends,
// with message 1 in the INBOX, and logins checked by introspection at p.
func startDovecot(t *testing.T, p *fakeProvider) *dovecot {
	t.Helper()
	bin := needProgram(t, "dovecot", "dovecot-core dovecot-imapd")
	needFile(t, "Dovecot's IMAP server", "dovecot-imapd", "/usr/lib/dovecot/imap", "/usr/libexec/dovecot/imap")
	d := &dovecot{t: t, dir: e2eShortDir(t), exited: make(chan struct{}), stdout: &e2eBuffer{}}
	// Dovecot's unprivileged processes must reach their sockets and the mail.
	if err := os.Chmod(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d.uid, d.gid = os.Getuid(), os.Getgid()
	rootless, chroot := "", ""
	if d.uid == 0 {
		// Dovecot refuses to open mail as root.
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("no user nobody to own the test mailbox: %v", err)
		}
		d.uid, _ = strconv.Atoi(u.Uid)
		d.gid, _ = strconv.Atoi(u.Gid)
	} else {
		// Without root, every Dovecot process runs as the current user.
		me, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(me.Gid)
		if err != nil {
			t.Fatal(err)
		}
		rootless = fmt.Sprintf("default_internal_user = %s\ndefault_login_user = %s\ndefault_internal_group = %s\n",
			me.Username, me.Username, g.Name)
		chroot = "  chroot =\n"
	}
	d.inbox = filepath.Join(d.dir, "mail", "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(d.inbox, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	d.deliver(1)
	d.certFile = filepath.Join(d.dir, "cert.pem")
	writeTestCert(t, d.certFile, filepath.Join(d.dir, "key.pem"))
	d.logFile = filepath.Join(d.dir, "dovecot.log")
	oauth2 := fmt.Sprintf(`introspection_mode = post
introspection_url = %s/introspect
client_id = %s
client_secret = %s
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
`, p.URL, p.IntrospectID, p.IntrospectSecret)
	if err := os.WriteFile(filepath.Join(d.dir, "oauth2.conf"), []byte(oauth2), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.cmd != nil {
			d.stop()
		}
	})
	for attempt := 1; ; attempt++ {
		d.port, d.tlsPort = freePort(t), freePort(t)
		conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = pizauth-test-%[2]d
log_path = %[3]s
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
disable_plaintext_auth = no
auth_mechanisms = xoauth2 oauthbearer
auth_verbose = yes
auth_failure_delay = 0
mail_location = maildir:%[4]s
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = %[1]s/oauth2.conf
}
userdb {
  driver = static
  args = uid=%[5]d gid=%[6]d home=%[1]s/mail
}
# The tests' refused logins must not slow down the next ones.
service anvil {
%[9]s  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
%[9]s  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[7]d
    ssl = yes
  }
}
%[8]s`, d.dir, d.port, d.logFile, d.inbox, d.uid, d.gid, d.tlsPort, rootless, chroot)
		confFile := filepath.Join(d.dir, "dovecot.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(filepath.Join(d.dir, "mail"), d.uid, d.gid); err != nil {
			t.Fatal(err)
		}
		err := d.start(bin, confFile)
		if err == nil {
			return d
		}
		if d.cmd != nil {
			d.stop()
		}
		// Another process may have taken one of the free ports meanwhile.
		if attempt < 3 && strings.Contains(e2eRead(d.logFile)+d.stdout.String(), "in use") {
			continue
		}
		t.Fatalf("Dovecot did not start: %v\n%s\n%s", err, d.stdout.String(), e2eRead(d.logFile))
	}
}

// start runs Dovecot in a process group of its own, so that stop can tell
// when every process it started has gone, and waits for its greeting.
func (d *dovecot) start(bin, confFile string) error {
	d.exited = make(chan struct{})
	cmd := exec.Command(bin, "-F", "-c", confFile)
	cmd.Stdout, cmd.Stderr = d.stdout, d.stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmd = cmd
	exited := d.exited
	go func() {
		cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-d.exited:
			return errors.New("dovecot exited during start-up")
		default:
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port)), time.Second); err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "* OK") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("no IMAP greeting within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop terminates Dovecot by its PID and checks that none of its processes
// is left.
func (d *dovecot) stop() {
	pid := d.cmd.Process.Pid
	select {
	case <-d.exited:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			d.t.Errorf("Dovecot (pid %d) still running 10 s after SIGTERM; killing it", pid)
			d.cmd.Process.Kill()
			<-d.exited
		}
	}
	for deadline := time.Now().Add(5 * time.Second); syscall.Kill(-pid, 0) == nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			d.t.Errorf("Dovecot's master exited but left processes in its group %d; killing them", pid)
			syscall.Kill(-pid, syscall.SIGKILL)
			break
		}
	}
	if d.t.Failed() {
		d.t.Logf("Dovecot log:\n%s", e2eRead(d.logFile))
	}
}

// deliver puts message n into the INBOX, as a delivery agent would.
func (d *dovecot) deliver(n int) {
	d.t.Helper()
	name := filepath.Join(d.inbox, "new", fmt.Sprintf("%d.M%dP1.pizauth-test", 1700000000+n, n))
	tmp := filepath.Join(d.inbox, "tmp", filepath.Base(name))
	if err := os.WriteFile(tmp, []byte(mailMessage(n)), 0o600); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		d.t.Fatal(err)
	}
	filepath.Walk(filepath.Dir(d.inbox), func(path string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Lchown(path, d.uid, d.gid)
		}
		return err
	})
}

// rejections are the connections whose login Dovecot refused, from its log.
func (d *dovecot) rejections() []string {
	var out []string
	for _, l := range strings.Split(e2eRead(d.logFile), "\n") {
		if strings.Contains(l, "imap-login:") && strings.Contains(l, "auth failed") {
			out = append(out, l)
		}
	}
	return out
}

// needFile is needProgram for a file that is not a command: one of the
// glob patterns must match.
func needFile(t *testing.T, what, debianPackage string, patterns ...string) {
	t.Helper()
	for _, p := range patterns {
		if m, _ := filepath.Glob(p); len(m) > 0 {
			return
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI=true: install it (apt-get install %s), as .ci/run does", what, debianPackage)
	}
	t.Skipf("skipping: %s is not installed (apt-get install %s); with CI=true this is a failure", what, debianPackage)
}

// needMbsync returns mbsync's path, once sure that Cyrus SASL can do
// XOAUTH2 for it.
func needMbsync(t *testing.T) string {
	t.Helper()
	path := needProgram(t, "mbsync", "isync")
	needFile(t, "the Cyrus SASL XOAUTH2 plugin", "libsasl2-modules-kdexoauth2",
		"/usr/lib/*/sasl2/lib*xoauth2.so*", "/usr/lib*/sasl2/lib*xoauth2.so*", "/usr/local/lib/sasl2/lib*xoauth2.so*")
	return path
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeTestCert(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// mailSetup is a provider, a Dovecot asking it about tokens, and a pizauth
// server with one account, "acct", for the mailbox's user.
type mailSetup struct {
	p   *fakeProvider
	c   fakeClient
	dc  *dovecot
	s   *srv
	env []string // for the mail programs: test-built pizauth on PATH, private HOME
}

func newMailSetup(t *testing.T, over map[string]string, extra string) *mailSetup {
	t.Helper()
	m := &mailSetup{p: newFakeProvider(t)}
	m.c = m.p.addClient(fakeClient{Scopes: []string{"https://mail.example.com/"}, User: mailUser})
	m.dc = startDovecot(t, m.p)
	m.s = startSrv(t, e2eConf(over, m.p.account("acct", m.c, extra)))
	// getmail delivers as the mailbox's owner when run as root, who must
	// reach its Maildir in HOME.
	for _, dir := range []string{m.s.root, m.s.home} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m.env = integrationEnv(m.s)
	return m
}

// curlIMAP is the README's curl command for IMAP, against the test's server
// without TLS.
func (m *mailSetup) curlIMAP(t *testing.T) string {
	t.Helper()
	return fillSnippet(t, "curl-imap", readmeSnippet(t, "curl-imap"),
		"<username>", mailUser, "<pizauth-account>", "acct",
		"imaps://<imap-server>/", fmt.Sprintf("imap://127.0.0.1:%d/", m.dc.port))
}

// curlBearer runs curl against the IMAP server with the given token.
func (m *mailSetup) curlBearer(t *testing.T, token string) (string, error) {
	t.Helper()
	needProgram(t, "curl", "curl")
	out, _, err := runProgram(t, m.env, "", "curl", "-q", "-sS", "--user", mailUser+":", "--oauth2-bearer", token,
		fmt.Sprintf("imap://127.0.0.1:%d/INBOX;MAILINDEX=1", m.dc.port))
	return out, err
}

// TestMailDovecotChecksTokens is the negative control for the tests below:
// Dovecot lets in a token the provider issued, and refuses a made-up token
// and an expired one, so a login it accepts proves a valid token.
func TestMailDovecotChecksTokens(t *testing.T) {
	t.Parallel()
	m := newMailSetup(t, nil, "")
	if out, err := m.curlBearer(t, e2eRandom(prefixAccess)); err == nil {
		t.Fatalf("Dovecot accepted a made-up token: %q", out)
	}
	tok := m.s.authorise(t, "acct")
	out, err := m.curlBearer(t, tok)
	if err != nil || !strings.Contains(out, "<msg-1@pizauth.test>") {
		t.Fatalf("Dovecot refused the token pizauth holds: %v, %q", err, out)
	}
	m.p.expire(tok)
	if out, err := m.curlBearer(t, tok); err == nil {
		t.Fatalf("Dovecot accepted an expired token: %q", out)
	}
	var active, inactive int
	for _, r := range m.p.introspections() {
		if r.Active {
			active++
		} else {
			inactive++
		}
	}
	if active != 1 || inactive != 2 {
		t.Errorf("the provider declared %d tokens active and %d inactive; want 1 and 2", active, inactive)
	}
	// Dovecot's log process writes a little after the client has gone.
	e2eWait(t, 5*time.Second, func() bool { return len(m.dc.rejections()) >= 2 }, "Dovecot to log both refusals")
	if r := m.dc.rejections(); len(r) != 2 {
		t.Errorf("Dovecot logged %d refused logins, want 2: %q", len(r), r)
	}
}

// writeFile writes a configuration file, creating its directory; mode 0600
// because msmtp and getmail refuse files others can read.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// maildirHas reports whether a Maildir holds message n.
func maildirHas(dir string, n int) bool {
	id := fmt.Sprintf("<msg-%d@pizauth.test>", n)
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(dir, sub, "*"))
		for _, f := range files {
			if strings.Contains(e2eRead(f), id) {
				return true
			}
		}
	}
	return false
}

// mbsyncConf is the README's mbsync configuration for the test's server:
// the channel <name> syncs into ~/Mail/<name>/.
func (m *mailSetup) mbsyncConf(t *testing.T, name string) string {
	t.Helper()
	return fillSnippet(t, "mbsync", readmeSnippet(t, "mbsync"),
		"<name>", name, "<imap-server>", "127.0.0.1", "<username>", mailUser, "<pizauth-account>", "acct",
		// The test server has no TLS on this port.
		"SSLType IMAPS", fmt.Sprintf("SSLType None\nPort %d", m.dc.port))
}

// TestMailPrograms runs each mail program, configured with the README's
// snippet, against Dovecot: each gets its token from `pizauth show` and
// must bring home the message waiting in the INBOX.
func TestMailPrograms(t *testing.T) {
	t.Parallel()
	mbsync := needMbsync(t)
	getmail := needProgram(t, "getmail", "getmail6")
	neomutt := needProgram(t, "neomutt", "neomutt")
	tmux := needProgram(t, "tmux", "tmux")
	needProgram(t, "curl", "curl")
	m := newMailSetup(t, nil, "")
	home := m.s.home

	writeFile(t, filepath.Join(home, ".mbsyncrc"), m.mbsyncConf(t, "mb"))
	if err := os.MkdirAll(filepath.Join(home, "Mail", "mb"), 0o755); err != nil {
		t.Fatal(err)
	}
	gmDir := filepath.Join(home, "Mail", "gm")
	gm := fillSnippet(t, "getmail", readmeSnippet(t, "getmail"),
		"<name>", "gm", "<imap-server>", "127.0.0.1", "<username>", mailUser, "<pizauth-account>", "acct",
		"type = SimpleIMAPSSLRetriever", "type = SimpleIMAPRetriever",
		"server = 127.0.0.1\n", fmt.Sprintf("server = 127.0.0.1\nport = %d\n", m.dc.port))
	if os.Getuid() == 0 {
		// getmail refuses to deliver as root.
		gm = strings.Replace(gm, "type = Maildir\n", "type = Maildir\nuser = nobody\n", 1)
	}
	writeFile(t, filepath.Join(home, ".config", "getmail", "getmailrc"), gm)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(gmDir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if os.Getuid() == 0 {
		u, _ := user.Lookup("nobody")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{gmDir, filepath.Join(gmDir, "cur"), filepath.Join(gmDir, "new"), filepath.Join(gmDir, "tmp")} {
			os.Chown(d, uid, gid)
		}
	}
	curl := m.curlIMAP(t)

	// Before the account is authorised `pizauth show` fails, and so must
	// every program, without logging in with an error message as a token.
	if _, errOut, err := runProgram(t, m.env, "", mbsync, "mb"); err == nil {
		t.Errorf("mbsync succeeded before the account was authorised (stderr %q)", errOut)
	}
	if _, errOut, err := runProgram(t, m.env, "", getmail); err == nil {
		t.Errorf("getmail succeeded before the account was authorised (stderr %q)", errOut)
	}
	if out, _, err := runProgram(t, m.env, "", "sh", "-c", curl); err == nil {
		t.Errorf("curl succeeded before the account was authorised: %q", out)
	}
	if n, r := len(m.p.introspections()), m.dc.rejections(); n != 0 || len(r) != 0 {
		t.Errorf("before the account was authorised, Dovecot was sent %d tokens and refused %q", n, r)
	}
	m.s.authorise(t, "acct")

	t.Run("mbsync", func(t *testing.T) {
		t.Parallel()
		if out, errOut, err := runProgram(t, m.env, "", mbsync, "mb"); err != nil {
			t.Fatalf("mbsync mb: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		if !maildirHas(filepath.Join(home, "Mail", "mb", "INBOX"), 1) {
			t.Fatalf("mbsync succeeded but the message is not in ~/Mail/mb/INBOX")
		}
	})
	t.Run("getmail", func(t *testing.T) {
		t.Parallel()
		if out, errOut, err := runProgram(t, m.env, "", getmail); err != nil {
			t.Fatalf("getmail: %v\nstdout: %s\nstderr: %s", err, out, errOut)
		}
		if !maildirHas(gmDir, 1) {
			t.Fatalf("getmail succeeded but the message is not in ~/Mail/gm")
		}
	})
	t.Run("curl", func(t *testing.T) {
		t.Parallel()
		out, errOut, err := runProgram(t, m.env, "", "sh", "-c", curl)
		if err != nil || !strings.Contains(out, "<msg-1@pizauth.test>") {
			t.Fatalf("curl: %v, printed %q (stderr %q)", err, out, errOut)
		}
	})
	t.Run("neomutt", func(t *testing.T) {
		t.Parallel()
		rc := fillSnippet(t, "neomutt", readmeSnippet(t, "neomutt"),
			"<imap-server>", fmt.Sprintf("127.0.0.1:%d", m.dc.tlsPort), "<smtp-server>", "127.0.0.1",
			"<username>", mailUser, "<pizauth-account>", "acct")
		// Trust the test server's self-signed certificate.
		rc += fmt.Sprintf("set certificate_file = %q\n", m.dc.certFile)
		writeFile(t, filepath.Join(home, ".config", "neomutt", "neomuttrc"), rc)
		// NeoMutt needs a terminal: run it in a detached tmux session on a
		// private socket and read the screen.
		sock := filepath.Join(m.s.root, "tmux.sock")
		env := append(m.env, "TERM=xterm")
		tm := func(args ...string) (string, error) {
			out, _, err := runProgram(t, env, "", tmux, append([]string{"-S", sock, "-f", "/dev/null"}, args...)...)
			return out, err
		}
		if _, err := tm("new-session", "-d", "-x", "160", "-y", "30", neomutt); err != nil {
			t.Fatalf("starting neomutt in tmux: %v", err)
		}
		t.Cleanup(func() { tm("kill-server") })
		var screen string
		e2eWait(t, 15*time.Second, func() bool {
			screen, _ = tm("capture-pane", "-p")
			return strings.Contains(screen, "pizauth test message 1")
		}, "neomutt to list the message")
		if !strings.Contains(screen, "+INBOX") {
			t.Errorf("neomutt's screen does not show the INBOX:\n%s", screen)
		}
	})
}

// TestMailTokensExpireUnderUse runs mbsync and curl every 4 s for 40 s
// while the provider's tokens live 12 s, as a user's mail programs run all
// day while their tokens expire: pizauth must refresh each token before it
// expires (6 s before, here), so that no run ever meets a token Dovecot
// refuses, and must use the rotated refresh token every time.
func TestMailTokensExpireUnderUse(t *testing.T) {
	t.Parallel()
	mbsync := needMbsync(t)
	needProgram(t, "curl", "curl")
	m := newMailSetup(t, nil, "refresh_before_expiry = 6s;")
	m.p.setExpiresIn(12)
	home := m.s.home
	writeFile(t, filepath.Join(home, ".mbsyncrc"), m.mbsyncConf(t, "mb"))
	if err := os.MkdirAll(filepath.Join(home, "Mail", "mb"), 0o755); err != nil {
		t.Fatal(err)
	}
	curl := m.curlIMAP(t)
	m.s.authorise(t, "acct")
	firstRefresh := m.p.refreshTokens(m.c.ID)

	const period, duration = 4 * time.Second, 40 * time.Second
	start := time.Now()
	runs := 0
	for i := 1; ; i++ {
		// A new message every round, so that each mbsync run has to log
		// in and fetch something.
		if i > 1 {
			m.dc.deliver(i)
		}
		if out, errOut, err := runProgram(t, m.env, "", mbsync, "mb"); err != nil {
			t.Fatalf("mbsync run %d, %v after the first: %v\nstdout: %s\nstderr: %s", i, time.Since(start).Round(time.Second), err, out, errOut)
		}
		if !maildirHas(filepath.Join(home, "Mail", "mb", "INBOX"), i) {
			t.Fatalf("mbsync run %d succeeded but did not fetch message %d", i, i)
		}
		if out, errOut, err := runProgram(t, m.env, "", "sh", "-c", curl); err != nil || !strings.Contains(out, "<msg-1@pizauth.test>") {
			t.Fatalf("curl run %d, %v after the first: %v, printed %q (stderr %q)", i, time.Since(start).Round(time.Second), err, out, errOut)
		}
		runs += 2
		if time.Since(start) >= duration {
			break
		}
		time.Sleep(time.Until(start.Add(time.Duration(i) * period)))
	}

	refreshes := m.p.clientRequests("/token", m.c.ID)[1:]
	used := map[string]bool{}
	for _, r := range refreshes {
		rt := r.Form.Get("refresh_token")
		if r.Form.Get("grant_type") != "refresh_token" || r.Status != 200 || used[rt] {
			t.Errorf("token request %v (status %d) is not a refresh with a fresh refresh token", r.Form.Get("grant_type"), r.Status)
		}
		used[rt] = true
	}
	tokens := map[string]bool{}
	rejected := 0
	for _, r := range m.p.introspections() {
		tokens[r.Form.Get("token")] = true
		if !r.Active {
			rejected++
		}
	}
	t.Logf("%d runs (mbsync and curl) over %v; %d refreshes; Dovecot checked %d distinct tokens, provider declared %d inactive, Dovecot logged %d refusals",
		runs, time.Since(start).Round(time.Second), len(refreshes), len(tokens), rejected, len(m.dc.rejections()))
	if rejected != 0 || len(m.dc.rejections()) != 0 {
		t.Errorf("Dovecot refused logins: %q", m.dc.rejections())
	}
	// 12 s tokens refreshed 6 s before expiry: one refresh every 6 s.
	if len(refreshes) < 4 || len(tokens) < 4 {
		t.Errorf("%d refreshes and %d distinct tokens used in %v; want several of each", len(refreshes), len(tokens), time.Since(start).Round(time.Second))
	}
	if live := m.p.refreshTokens(m.c.ID); len(live) != 1 || len(firstRefresh) != 1 || live[0] == firstRefresh[0] {
		t.Errorf("the refresh token did not rotate: live %d, first %d", len(live), len(firstRefresh))
	}
}
