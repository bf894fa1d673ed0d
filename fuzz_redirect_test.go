package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
)

// memConn is a net.Conn over fixed input: reads see the input then EOF,
// writes are collected. The redirect handler sees exactly what a browser
// (or an attacker) sent, with no scheduling or timeouts in the way, so a
// fuzzing failure always reproduces.
type memConn struct {
	r   *bytes.Reader
	out bytes.Buffer
}

func (c *memConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *memConn) Close() error                { return nil }
func (c *memConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: fuzzPort}
}
func (c *memConn) RemoteAddr() net.Addr               { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (c *memConn) SetDeadline(t time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { return nil }

// offlineTransport fails every request at once, so that slow work started
// by a fuzzed input (a code exchange, a refresh) never touches the network
// and finishes in microseconds.
type offlineTransport struct{}

func (offlineTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("offline")
}

func offlineProvider() *provider {
	p := newProvider()
	p.client = newHTTPClient(offlineTransport{})
	p.retries = 0
	return p
}

// quietLog silences the server's logger for the rest of the test: fuzzing
// runs millions of inputs, each of which may log a failed exchange.
func quietLog(tb testing.TB) {
	tb.Cleanup(swapLog(io.Discard, lvlTrace))
}

const (
	fuzzPort     = 8080
	fuzzState    = "fuzzSTATE0123456789abcdefghijklmnopqrstuvw"
	fuzzVerifier = "fuzzVERIFIER0123456789abcdefghijklmnopqrstuvwxyz"
)

// redirectSeeds are realistic requests: the genuine redirect, a provider
// error, and the near misses the handler must turn away.
var redirectSeeds = []string{
	"GET /?state=" + fuzzState + "&code=pzCODE-abc HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: Mozilla/5.0\r\n\r\n",
	"GET /?code=pzCODE-abc&state=" + fuzzState + "&scope=mail HTTP/1.1\r\nHost: LOCALHOST:8080\r\n\r\n",
	"GET /?state=" + fuzzState + "&error=access_denied&error_description=The+user+said+no%0A HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
	"GET /?state=" + fuzzState + "&code= HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
	"GET /?state=" + fuzzState + "&code=x HTTP/1.1\r\nHost: localhost:8081\r\n\r\n",
	"GET /elsewhere?state=" + fuzzState + "&code=x HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
	"GET /?state=" + fuzzState + "&code=x HTTP/1.0\r\n\r\n",
	"POST /?state=" + fuzzState + "&code=x HTTP/1.1\r\nHost: localhost:8080\r\nContent-Length: 0\r\n\r\n",
	"GET /?state=forged&code=x HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
	"GET /?state=" + fuzzState + ";code=x HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
	"GET http://localhost:8080/?state=" + fuzzState + "&code=x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
	"GET /favicon.ico HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
	"GARBAGE\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: localhost:8080\r\n",
	"",
}

// FuzzRedirect sends arbitrary bytes as a raw HTTP request to the redirect
// listener's handler, against a state with one pending authorisation and
// one active token. Whatever arrives, the handler must answer with a
// well-formed HTTP response; it may touch the pending authorisation only
// for a GET to the exact redirect URI carrying its state and a code or an
// error; and it must never touch the active token.
func FuzzRedirect(f *testing.F) {
	for _, s := range redirectSeeds {
		f.Add([]byte(s))
	}
	quietLog(f)
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	pend, act := schedAccount("pend"), schedAccount("act")
	st := newState(ctx, &Config{Accounts: []*Account{pend, act}}, offlineProvider())
	f.Cleanup(func() { st.events.close(0) })
	st.httpPort = fuzzPort
	activate(st, "act", time.Now(), time.Hour, "pzRT-act")
	st.mu.Lock()
	actVersion := st.accts["act"].version
	st.mu.Unlock()
	rl := &redirectListener{st: st, port: fuzzPort}

	f.Fuzz(func(t *testing.T, in []byte) {
		// A fresh pending request each time; any exchange still running
		// from an earlier input is cancelled and its result discarded.
		st.mu.Lock()
		a := st.accts["pend"]
		a.reset()
		a.kind, a.version = kindPending, st.bump()
		a.authState, a.verifier, a.usedState = fuzzState, fuzzVerifier, ""
		a.redirectURI = "http://localhost:8080/"
		a.url = "http://auth.invalid/?state=" + fuzzState
		version := a.version
		st.mu.Unlock()

		c := &memConn{r: bytes.NewReader(in)}
		rl.handle(c)

		st.mu.Lock()
		a = st.accts["pend"]
		changed := a.version != version || a.kind != kindPending || a.exchanging
		exchanging := a.exchanging
		b := st.accts["act"]
		actOK := b.version == actVersion && b.kind == kindActive && b.access == "access-act" && b.refresh == "pzRT-act"
		st.mu.Unlock()
		if !actOK {
			t.Fatalf("the active account changed after %q", in)
		}

		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(c.out.Bytes())), nil)
		if err != nil {
			t.Fatalf("answer to %q is not an HTTP response: %v\n%q", in, err, c.out.Bytes())
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || int64(len(body)) != resp.ContentLength {
			t.Fatalf("answer to %q: body of %d bytes, Content-Length %d, %v", in, len(body), resp.ContentLength, err)
		}
		if !strings.HasPrefix(c.out.String(), "HTTP/1.1 "+resp.Status+"\r\n") {
			t.Fatalf("bad status line in %q", c.out.Bytes())
		}
		if text := strings.TrimSuffix(string(body), "\n"); strings.ContainsFunc(text, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("answer body has control characters: %q", body)
		}
		if bytes.Contains(c.out.Bytes(), []byte(fuzzVerifier)) {
			t.Fatalf("answer reveals the verifier")
		}

		code, errParam, valid := redirectOracle(in)
		switch {
		case changed && !valid:
			t.Fatalf("pending authorisation changed by an invalid request %q (answer %d)", in, resp.StatusCode)
		case valid && errParam != "":
			if !changed || exchanging || resp.StatusCode != 400 {
				t.Fatalf("provider error %q: changed=%v, answer %d; want the request failed with 400", errParam, changed, resp.StatusCode)
			}
		case valid && code != "":
			if !changed || resp.StatusCode != 200 || !strings.Contains(string(body), processingPage) {
				t.Fatalf("genuine redirect %q: changed=%v, answer %d %q", in, changed, resp.StatusCode, body)
			}
		case !valid && resp.StatusCode == 200 && strings.Contains(string(body), processingPage):
			t.Fatalf("invalid request %q told the user it is being processed", in)
		}
	})
}

// redirectOracle says, independently of redirect.go's code path, whether in
// is a redirect that may act on the fuzz state's pending authorisation: a
// complete GET request to http://localhost:8080/ (host in any case) with
// its state and a non-empty code or error.
func redirectOracle(in []byte) (code, errParam string, valid bool) {
	lr := io.LimitReader(bytes.NewReader(in), maxRedirectRequest)
	req, err := http.ReadRequest(bufio.NewReaderSize(lr, 4096))
	if err != nil || req.Method != http.MethodGet {
		return "", "", false
	}
	host, port, err := net.SplitHostPort(req.Host)
	if err != nil || !strings.EqualFold(host, "localhost") || port != "8080" {
		return "", "", false
	}
	if req.URL.Path != "/" && req.URL.Path != "" {
		return "", "", false
	}
	q := req.URL.Query()
	if q.Get("state") != fuzzState {
		return "", "", false
	}
	code, errParam = q.Get("code"), q.Get("error")
	return code, errParam, code != "" || errParam != ""
}

// The oracle must agree with the spec on the seeds, or FuzzRedirect's
// checks would hold vacuously.
func TestRedirectOracleSeeds(t *testing.T) {
	for i, s := range redirectSeeds {
		_, _, valid := redirectOracle([]byte(s))
		if want := i < 3 || i == 10; valid != want {
			t.Errorf("seed %d %q: oracle says valid=%v", i, s, valid)
		}
	}
}

// FuzzRequest reaches the request decoder and the dispatcher directly
// (FuzzFrame must first guess a matching length prefix). Every payload must
// either be refused with a one-line error or run as a command whose answer
// is a well-formed response; nothing may panic.
func FuzzRequest(f *testing.F) {
	for _, fields := range [][]string{
		{"show", "", "a"}, {"show", "u", "a"}, {"show", "", "nosuch"},
		{"refresh", "", "a"}, {"status", ""}, {"status", "j"}, {"info"},
		{"reload"}, {"revoke", "a"}, {"dump"}, {"restore", "PIZAUTHD\x01"},
		{"shutdown"}, {"frobnicate"}, {"show", "x"}, {},
	} {
		bs := make([][]byte, len(fields))
		for i, s := range fields {
			bs[i] = []byte(s)
		}
		f.Add(encodeFields(bs...))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x80, 0x00})
	quietLog(f)

	conf := "https_listen = none;\n" +
		"account \"a\" {\n auth_uri = \"https://auth.invalid/\";\n token_uri = \"https://token.invalid/\";\n client_id = \"c\";\n redirect_uri = \"http://localhost/\";\n}\n"
	confPath := filepath.Join(f.TempDir(), "pizauth.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		f.Fatal(err)
	}
	c, err := loadConfig(confPath)
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	srv := &server{confPath: confPath, st: newState(ctx, c, offlineProvider()), cancel: cancel, done: make(chan struct{})}
	f.Cleanup(func() { srv.st.events.close(0) })

	// Messages reach the user's terminal: one line, no control characters.
	oneLine := func(t *testing.T, what, msg string) {
		if strings.ContainsFunc(msg, unicode.IsControl) {
			t.Fatalf("%s is not one line: %q", what, msg)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := decodeRequest(in)
		if err != nil {
			oneLine(t, "decoder error", err.Error())
			return
		}
		if want, _ := argCount(req.cmd); len(req.args) != want {
			t.Fatalf("%s accepted with %d arguments, want %d", req.cmd, len(req.args), want)
		}
		again, err := decodeRequest(encodeFields(append([][]byte{[]byte(req.cmd)}, req.args...)...))
		if err != nil || again.cmd != req.cmd || len(again.args) != len(req.args) {
			t.Fatalf("re-encoded request differs: %v", err)
		}
		for i := range req.args {
			if !bytes.Equal(again.args[i], req.args[i]) {
				t.Fatalf("argument %d differs after re-encoding", i)
			}
		}
		resp := srv.dispatch(req)
		vals, err := decodeResponse(resp)
		var se serverError
		switch {
		case errors.As(err, &se):
			oneLine(t, req.cmd+" error", se.Error())
		case err != nil:
			t.Fatalf("%s answered with a malformed response: %v", req.cmd, err)
		case req.cmd == "info" && len(vals) != 5, req.cmd == "show" && len(vals) != 1:
			t.Fatalf("%s answered with %d values", req.cmd, len(vals))
		}
	})
}
