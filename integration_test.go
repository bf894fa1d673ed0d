package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the programs users actually put pizauth behind — msmtp
// with `passwordeval "pizauth show acct"` and curl with a bearer header —
// against the real binary, so that a change to what `pizauth show` prints
// (an extra line, a missing newline, a message on stdout) is caught the way
// a user would hit it: mail that does not go out.

// needProgram returns the path of a program an integration test drives. A
// missing program skips the test on a developer's machine but fails it in
// CI, where .ci/run installs it: a silently skipped integration test would
// otherwise pass CI forever.
func needProgram(t *testing.T, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI=true: install it (apt-get install %s), as .ci/run does", name, debianPackage)
	}
	t.Skipf("skipping: %s is not installed (apt-get install %s); with CI=true this is a failure", name, debianPackage)
	return ""
}

// integrationEnv is the server's environment with the test-built pizauth
// first on PATH, so hooks and scripts can say plain `pizauth` as users do.
// HOME is the installation's private home, so neither msmtp nor curl reads
// the developer's own ~/.msmtprc or ~/.curlrc.
func integrationEnv(s *srv) []string {
	env := make([]string, 0, len(s.env))
	for _, kv := range s.env {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env, "PATH="+filepath.Dir(e2eBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// runProgram runs a program with a deadline, so a client that hangs fails
// the test instead of stalling the suite.
func runProgram(t *testing.T, env []string, stdin string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within 15 s (stderr %q)", name, strings.Join(args, " "), errb.String())
	}
	return out.String(), errb.String(), err
}

// smtpMessage is one message the test SMTP server accepted.
type smtpMessage struct {
	user, token string // from the XOAUTH2 exchange
	from        string
	to          []string
	data        string
}

// smtpServer is a minimal SMTP submission server that only offers
// XOAUTH2 (no TLS), and accepts mail only after an XOAUTH2 exchange whose
// bearer token passes check.
type smtpServer struct {
	t     *testing.T
	ln    net.Listener
	check func(user, token string) bool
	wg    sync.WaitGroup

	mu        sync.Mutex
	delivered []smtpMessage
	refused   []string // tokens refused by check
}

func newSMTPServer(t *testing.T, check func(user, token string) bool) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &smtpServer{t: t, ln: ln, check: check}
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			srv.wg.Add(1)
			go func() {
				defer srv.wg.Done()
				srv.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		srv.wg.Wait()
	})
	return srv
}

func (srv *smtpServer) port() int { return srv.ln.Addr().(*net.TCPAddr).Port }

func (srv *smtpServer) messages() []smtpMessage {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return append([]smtpMessage(nil), srv.delivered...)
}

// parseXOAUTH2 decodes the client response of SASL XOAUTH2:
// base64("user=" user "\x01auth=Bearer " token "\x01\x01").
func parseXOAUTH2(b64 string) (user, token string, err error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", "", fmt.Errorf("not base64: %v", err)
	}
	s, ok := strings.CutSuffix(string(raw), "\x01\x01")
	if !ok {
		return "", "", fmt.Errorf("%q does not end with ^A^A", raw)
	}
	for _, f := range strings.Split(s, "\x01") {
		switch {
		case strings.HasPrefix(f, "user="):
			user = strings.TrimPrefix(f, "user=")
		case strings.HasPrefix(f, "auth=Bearer "):
			token = strings.TrimPrefix(f, "auth=Bearer ")
		default:
			return "", "", fmt.Errorf("unexpected field %q", f)
		}
	}
	if user == "" || token == "" {
		return "", "", fmt.Errorf("%q lacks user= or auth=Bearer", raw)
	}
	return user, token, nil
}

func (srv *smtpServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	tp := textproto.NewConn(c)
	reply := func(code int, lines ...string) bool {
		for i, l := range lines {
			sep := "-"
			if i == len(lines)-1 {
				sep = " "
			}
			if err := tp.PrintfLine("%d%s%s", code, sep, l); err != nil {
				return false
			}
		}
		return true
	}
	if !reply(220, "localhost ESMTP pizauth-test") {
		return
	}
	var msg smtpMessage
	authed := false
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			reply(250, "localhost", "AUTH XOAUTH2", "8BITMIME")
		case "HELO":
			reply(250, "localhost")
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "XOAUTH2") {
				reply(504, "5.5.4 only XOAUTH2 is offered")
				continue
			}
			if resp == "" {
				reply(334, "")
				if resp, err = tp.ReadLine(); err != nil {
					return
				}
			}
			user, token, err := parseXOAUTH2(resp)
			if err != nil {
				srv.t.Errorf("SMTP server: bad XOAUTH2 response: %v", err)
				reply(501, "5.5.2 malformed XOAUTH2 response")
				continue
			}
			if !srv.check(user, token) {
				srv.mu.Lock()
				srv.refused = append(srv.refused, token)
				srv.mu.Unlock()
				reply(535, "5.7.8 token refused")
				continue
			}
			authed = true
			msg.user, msg.token = user, token
			reply(235, "2.7.0 accepted")
		case "MAIL":
			if !authed {
				reply(530, "5.7.0 authentication required")
				continue
			}
			msg.from = arg
			reply(250, "2.1.0 ok")
		case "RCPT":
			msg.to = append(msg.to, arg)
			reply(250, "2.1.5 ok")
		case "DATA":
			if msg.from == "" || len(msg.to) == 0 {
				reply(503, "5.5.1 MAIL and RCPT first")
				continue
			}
			reply(354, "end with <CRLF>.<CRLF>")
			data, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			msg.data = string(data)
			srv.mu.Lock()
			srv.delivered = append(srv.delivered, msg)
			srv.mu.Unlock()
			msg = smtpMessage{user: msg.user, token: msg.token}
			reply(250, "2.0.0 queued")
		case "RSET":
			msg = smtpMessage{user: msg.user, token: msg.token}
			reply(250, "2.0.0 ok")
		case "NOOP":
			reply(250, "2.0.0 ok")
		case "QUIT":
			reply(221, "2.0.0 bye")
			return
		default:
			reply(502, "5.5.2 command not implemented")
		}
	}
}

// TestIntegrationMsmtp sends mail with the real msmtp, which gets its
// XOAUTH2 token from `pizauth show` through passwordeval, exactly as the
// README tells users to set it up.
func TestIntegrationMsmtp(t *testing.T) {
	t.Parallel()
	msmtp := needProgram(t, "msmtp", "msmtp")
	p := newFakeProvider(t)
	c := p.addClient(fakeClient{Scopes: []string{"https://mail.example.com/"}})
	s := startSrv(t, e2eConf(nil, p.account("acct", c, "")))

	const user = "someone@example.com"
	smtp := newSMTPServer(t, func(u, token string) bool {
		return u == user && token != "" && token == p.lastToken(c.ID)
	})
	// The README's snippet, where the README says to put it; the test adds
	// a log file, and turns TLS off, which its server does not offer.
	conf := filepath.Join(s.home, ".config", "msmtp", "config")
	snippet := fillSnippet(t, "msmtp", readmeSnippet(t, "msmtp"),
		"<name>", "acct", "<smtp-server>", "127.0.0.1", "port 587", fmt.Sprintf("port %d", smtp.port()),
		"tls on", "tls off", "<username>", user, "<email-address>", user, "<pizauth-account>", "acct")
	msmtprc := fmt.Sprintf("defaults\nsyslog off\nlogfile %s\ntimeout 10\n\n%s", filepath.Join(s.home, "msmtp.log"), snippet)
	// msmtp refuses a configuration file that others can read.
	writeFile(t, conf, msmtprc)
	env := integrationEnv(s)
	mail := "From: " + user + "\r\nTo: friend@example.org\r\nSubject: pizauth integration\r\n\r\nsent with a token from pizauth\r\n.leading dot\r\n"
	send := func() (string, error) {
		_, errOut, err := runProgram(t, env, mail, msmtp, "-a", "acct", "friend@example.org")
		return errOut, err
	}

	// Before authorisation `pizauth show` fails, so msmtp must not send
	// anything (in particular not an empty or error-message "token").
	if errOut, err := send(); err == nil {
		t.Fatalf("msmtp succeeded before the account was authorised (stderr %q)", errOut)
	}
	if m := smtp.messages(); len(m) != 0 {
		t.Fatalf("a message was delivered before authorisation: %+v", m)
	}

	tok := s.authorise(t, "acct")
	if errOut, err := send(); err != nil {
		t.Fatalf("msmtp failed after authorisation: %v\nstderr: %s\nmsmtp log:\n%s", err, errOut, e2eRead(filepath.Join(s.home, "msmtp.log")))
	}
	msgs := smtp.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages delivered, want 1", len(msgs))
	}
	m := msgs[0]
	if m.token != tok || m.user != user {
		t.Errorf("XOAUTH2 user %q token %q; want %q and the token pizauth show printed (%q)", m.user, m.token, user, tok)
	}
	if m.from != "FROM:<"+user+">" || len(m.to) != 1 || m.to[0] != "TO:<friend@example.org>" {
		t.Errorf("envelope MAIL %q RCPT %q", m.from, m.to)
	}
	if !strings.Contains(m.data, "sent with a token from pizauth\n.leading dot\n") {
		t.Errorf("message body arrived as %q", m.data)
	}
}

// TestIntegrationCurl calls a resource server with the real curl and the
// token substituted by the shell, the usual way to script an API call.
func TestIntegrationCurl(t *testing.T) {
	t.Parallel()
	needProgram(t, "curl", "curl")
	p := newFakeProvider(t)
	c := p.addClient(fakeClient{})
	s := startSrv(t, e2eConf(nil, p.account("acct", c, "")))

	var mu sync.Mutex
	var seen []string
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		mu.Lock()
		seen = append(seen, auth)
		mu.Unlock()
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || tok == "" || tok != p.lastToken(c.ID) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "resource for the bearer\n")
	}))
	t.Cleanup(rs.Close)

	env := integrationEnv(s)
	// The README's command; -q ignores any curlrc, --noproxy keeps the local
	// resource server local, -f fails on an HTTP error.
	script := fillSnippet(t, "curl-http", readmeSnippet(t, "curl-http"),
		"<pizauth-account>", "acct", "curl -H", "curl -q -sf --noproxy '*' -H",
		"https://graph.microsoft.com/v1.0/me", rs.URL+"/mailbox")
	curl := func() (string, error) {
		out, _, err := runProgram(t, env, "", "sh", "-c", script)
		return out, err
	}

	if out, err := curl(); err == nil {
		t.Fatalf("curl succeeded before the account was authorised: %q", out)
	}
	mu.Lock()
	if len(seen) != 0 {
		t.Errorf("curl called the resource server before the account was authorised, with %q", seen)
	}
	mu.Unlock()
	tok := s.authorise(t, "acct")
	out, err := curl()
	mu.Lock()
	headers := append([]string(nil), seen...)
	mu.Unlock()
	if err != nil {
		t.Fatalf("curl failed after authorisation: %v (Authorization headers seen: %q)", err, headers)
	}
	if out != "resource for the bearer\n" {
		t.Errorf("curl printed %q", out)
	}
	if last := headers[len(headers)-1]; last != "Bearer "+tok {
		t.Errorf("resource server saw %q, want the token pizauth show printed", last)
	}
}
