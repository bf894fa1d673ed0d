package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestE2ERedirectFloodLowFDLimit: with the server's descriptor limit at 256,
// hundreds of idle connections to the redirect port neither slow `show`
// down nor keep a real redirect out, and the log says so in a line or two
// rather than one per connection.
func TestE2ERedirectFloodLowFDLimit(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := newSrvEnv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	s.startCmd(t, exec.Command("/bin/sh", "-c", `ulimit -n 256 && exec "$0" server -d -vvvv -c "$1"`, e2eBin, s.confPath))
	tok := s.authorise(t, "a")
	port := s.info(t).ServerInfo.HTTPPort

	for i := range 600 {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		defer c.Close()
	}
	for range 5 {
		if got := s.showToken(t, "a"); got != tok {
			t.Fatalf("show during the flood printed %q, want %q", got, tok)
		}
	}
	s.mustRun(t, "revoke", "a")
	s.authorise(t, "a")

	logs := s.logs()
	if n := strings.Count(logs, "connections open: closing the oldest to make room"); n != 1 {
		t.Errorf("%d lines about the flood starting, want 1", n)
	}
	if strings.Contains(logs, "too many open files") {
		t.Errorf("the server ran out of descriptors:\n%s", logs)
	}
}

// TestE2ERedirectOnDefaultPort: a browser leaves :80 out of the Host header;
// with http_listen on port 80 the login still completes.
func TestE2ERedirectOnDefaultPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:80")
	if err != nil {
		t.Skipf("port 80 is not available (%v): this test needs root and a free port", err)
	}
	l.Close()
	p := newFakeProvider(t)
	s := startSrv(t, e2eConf(map[string]string{"http_listen": `"127.0.0.1:80"`},
		p.account("a", p.addClient(fakeClient{}), "")))
	first := e2eBrowse(t, http.MethodGet, s.pendingURL(t, "a"))
	u, err := url.Parse(first.Location)
	if err != nil || u.Port() != "80" {
		t.Fatalf("provider redirected to %q, want pizauth on port 80", first.Location)
	}
	req, err := http.NewRequest(http.MethodGet, first.Location, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = u.Hostname() // as browsers send it
	resp, err := (&http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("redirect with Host %q answered %d", req.Host, resp.StatusCode)
	}
	s.waitToken(t, "a", "")
}

// TestRedirectMatchesDefaultPort: a Host header without a port means the
// scheme's default port, and only that.
func TestRedirectMatchesDefaultPort(t *testing.T) {
	for _, c := range []struct {
		https bool
		port  int
		uri   string
		host  string
		want  bool
	}{
		{false, 80, "http://localhost:80/", "localhost", true},
		{false, 80, "http://localhost/", "localhost", true},
		{false, 80, "http://localhost:80/", "localhost:80", true},
		{false, 80, "http://[::1]:80/", "[::1]", true},
		{false, 8080, "http://localhost:8080/", "localhost:8080", true},
		{false, 8080, "http://localhost:8080/", "localhost", false},
		{false, 443, "http://localhost:443/", "localhost", false},
		{false, 80, "http://localhost:80/", "localhost:8080", false},
		{false, 80, "http://localhost:80/", "example.org", false},
		{true, 443, "https://localhost:443/", "localhost", true},
		{true, 443, "https://localhost/", "localhost:443", true},
		{true, 8443, "https://localhost:8443/", "localhost", false},
		{true, 80, "https://localhost:80/", "localhost", false},
	} {
		r := &redirectListener{port: c.port}
		if c.https {
			r.tlsConfig = &tls.Config{}
		}
		req := &http.Request{Method: http.MethodGet, Host: c.host, URL: &url.URL{Path: "/"}}
		if got := r.matches(req, c.uri); got != c.want {
			t.Errorf("listener on port %d (https %v), redirect URI %s, Host %q: match %v, want %v", c.port, c.https, c.uri, c.host, got, c.want)
		}
	}
}
