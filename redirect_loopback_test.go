package main

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
)

// These tests show that only the user's own browser can finish a login:
// pizauth holds both loopback addresses of its redirect port, or refuses
// the port, and on Linux it closes other users' connections unread.

// needIPv6Loopback skips a test on a host without ::1.
func needIPv6Loopback(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	l.Close()
}

func listenerPort(l net.Listener) string { return strconv.Itoa(l.Addr().(*net.TCPAddr).Port) }

// heldPort returns a port whose [::1] side the test holds until it ends
// and whose 127.0.0.1 side is free.
func heldPort(t *testing.T) string {
	t.Helper()
	for i := 0; i < 20; i++ {
		sq, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback here: %v", err)
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+listenerPort(sq)); err == nil {
			l.Close()
			t.Cleanup(func() { sq.Close() })
			return listenerPort(sq)
		}
		sq.Close()
	}
	t.Fatal("no port free on 127.0.0.1 for 20 ports picked on ::1")
	return ""
}

// squatListenTCP makes listenTCP's next n picks of port 0 collide: another
// program takes the ::1 side of each port just picked on 127.0.0.1. It
// returns the ports taken.
func squatListenTCP(t *testing.T, n int) *[]string {
	t.Helper()
	var taken []string
	t.Cleanup(func() { listenTCP = net.Listen })
	listenTCP = func(network, addr string) (net.Listener, error) {
		l, err := net.Listen(network, addr)
		if err == nil && addr == "127.0.0.1:0" && len(taken) < n {
			// Already in use: another program holds it already.
			if sq, err := net.Listen("tcp", net.JoinHostPort("::1", listenerPort(l))); err == nil {
				t.Cleanup(func() { sq.Close() })
			}
			taken = append(taken, listenerPort(l))
		}
		return l, err
	}
	return &taken
}

// With port 0, a port whose ::1 side another program holds is given up for
// another, until both sides are pizauth's.
func TestListenRedirectPicksAgain(t *testing.T) {
	needIPv6Loopback(t)
	quietLog(t)
	taken := squatListenTCP(t, 3)
	ls, port, missing, err := listenRedirect("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer (&redirectListener{ls: ls}).close()
	if len(*taken) != 3 {
		t.Fatalf("%d ports squatted, want 3", len(*taken))
	}
	p := strconv.Itoa(port)
	for _, q := range *taken {
		if q == p {
			t.Errorf("kept port %s, whose ::1 side another program holds", p)
		}
	}
	var got []string
	for _, l := range ls {
		got = append(got, l.Addr().String())
	}
	if want := []string{"127.0.0.1:" + p, "[::1]:" + p}; missing != "" || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("listening on %q (missing %q), want %q", got, missing, want)
	}
}

// When every port picked collides, pizauth gives up after a bounded number
// of tries, saying why.
func TestListenRedirectGivesUp(t *testing.T) {
	needIPv6Loopback(t)
	quietLog(t)
	taken := squatListenTCP(t, 1<<30)
	_, _, _, err := listenRedirect("127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "another program holds ::1 on every port tried") {
		t.Fatalf("error %v, want one naming the other program on ::1", err)
	}
	if len(*taken) != maxPortTries {
		t.Errorf("%d ports tried, want %d", len(*taken), maxPortTries)
	}
}

// With a fixed port whose ::1 side is taken, only accounts whose
// redirect_uri can reach ::1 are refused, with the address and the remedy.
func TestCheckListenersLoopbackTaken(t *testing.T) {
	quietLog(t)
	p := heldPort(t)
	ls, port, missing, err := listenRedirect("127.0.0.1:" + p)
	if err != nil {
		t.Fatal(err)
	}
	r := &redirectListener{ls: ls, port: port, missing: missing}
	defer r.close()
	if missing != "::1" || len(ls) != 1 {
		t.Fatalf("missing %q with %d listeners; want ::1 and one", missing, len(ls))
	}
	https := &redirectListener{port: 8443}
	for _, c := range []struct{ redirect, auth, want string }{
		{"http://127.0.0.1/", "https://a/", ""},
		{"http://localhost/", "", ""}, // device flow: no redirect
		{"https://localhost/", "https://a/", ""},
		{"http://localhost/", "https://a/", "a browser may take its redirect_uri to [::1]:" + p + ", which another program held when the server started and would receive the login: use (and register with the provider) a redirect_uri of http://127.0.0.1:" + p + "/ instead of localhost (RFC 8252 §7.3), or free the port and restart the server"},
		{"http://LocalHost:9/x", "https://a/", "[::1]:" + p},
		{"http://[::1]/", "https://a/", "[::1]:" + p},
	} {
		a := &Account{Name: "acct", AuthURI: c.auth, DeviceAuthURI: "https://d/", RedirectURI: c.redirect}
		err := checkListeners(&Config{Accounts: []*Account{a}}, r, https)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("redirect_uri %s (auth_uri %q): %v; want %q", c.redirect, c.auth, err, c.want)
		}
	}
}

// TestE2ELoopbackTakenFixedPort: with http_listen on a fixed port whose ::1
// side another program holds, a 127.0.0.1 redirect_uri works, while a
// localhost one is refused at reload and at start, saying what to do.
func TestE2ELoopbackTakenFixedPort(t *testing.T) {
	t.Parallel()
	p := heldPort(t)
	prov := newFakeProvider(t)
	c := prov.addClient(fakeClient{RedirectURI: "http://127.0.0.1/"})
	literal := e2eConf(map[string]string{"http_listen": `"127.0.0.1:` + p + `"`}, prov.account("a", c, ""))
	s := startSrv(t, literal)
	s.authorise(t, "a")

	localhost := strings.Replace(literal, `"http://127.0.0.1/"`, `"http://localhost/"`, 1)
	s.writeConf(t, localhost)
	want := "a browser may take its redirect_uri to [::1]:" + p + ", which another program held"
	if _, errOut, code := s.run("reload"); code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("reload to a localhost redirect_uri: exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
	s.showToken(t, "a") // the old configuration is kept
	s.stop()
	if _, errOut, code := s.run("server"); code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "http://127.0.0.1:"+p+"/ instead of localhost") {
		s.run("shutdown")
		t.Errorf("start with a localhost redirect_uri: exit %d, stderr %q; want exit 1 and %q", code, errOut, want)
	}
}

// TestE2EDefaultListeners: with the default listen addresses both
// listeners answer on 127.0.0.1 and, where the host has IPv6, on ::1 at
// the same port, even when another program holds ::1 on most of the ports
// Linux picks for port 0: pizauth picks again.
func TestE2EDefaultListeners(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := newSrvEnv(t, e2eConf(map[string]string{"http_listen": "", "https_listen": ""},
		p.account("a", p.addClient(fakeClient{}), "")))
	hosts := []string{"127.0.0.1"}
	if l, err := net.Listen("tcp", "[::1]:0"); err == nil {
		l.Close()
		hosts = append(hosts, "::1")
		squatter, out := runAs(t, os.Getuid(), "squat")
		if line, _ := out.ReadString('\n'); !strings.HasPrefix(line, "ready ") {
			t.Fatalf("squatter: %q", line)
		}
		s.start(t)
		squatter.Process.Kill() // others may need the ports
		t.Logf("pizauth picked again %d times", strings.Count(s.logs(), "Trying another port"))
	} else {
		s.start(t)
	}
	si := s.info(t).ServerInfo
	if si == nil {
		t.Fatalf("info -j has no server_info")
	}
	for _, h := range hosts {
		for _, l := range []struct{ scheme, port string }{{"http", si.HTTPPort}, {"https", si.HTTPSPort}} {
			if _, err := strconv.Atoi(l.port); err != nil {
				t.Fatalf("%s port %q is not a number", l.scheme, l.port)
			}
			if r := e2eBrowse(t, http.MethodGet, l.scheme+"://"+net.JoinHostPort(h, l.port)+"/"); r.Status != 404 {
				t.Errorf("GET / on %s %s: status %d, want 404 (no state)", l.scheme, h, r.Status)
			}
		}
	}
	s.authorise(t, "a")
}

// TestE2ERedirectRefusesOtherUsers: another user's program that has the
// pending request's state (leaked from a command line, say) gets no answer
// from the redirect listener, and its code is never exchanged; the log says
// so once per burst; the user's own browser still finishes the login.
func TestE2ERedirectRefusesOtherUsers(t *testing.T) {
	skipUnlessRoot(t, "connect as another user")
	t.Parallel()
	p := newFakeProvider(t)
	s := startSrv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	u, _ := url.Parse(s.pendingURL(t, "a"))
	q := u.Query()
	forged := q.Get("redirect_uri") + "?" + url.Values{"state": {q.Get("state")}, "code": {"attacker-code"}}.Encode()
	attack := func() {
		t.Helper()
		for _, host := range []string{"localhost", "127.0.0.1"} {
			fu, _ := url.Parse(forged)
			fu.Host = net.JoinHostPort(host, fu.Port())
			_, out := runAs(t, otherUID, "get "+fu.String())
			if line, _ := out.ReadString('\n'); line != "no answer\n" {
				t.Errorf("uid %d's request to %s: %q, want no answer", otherUID, fu.Host, line)
			}
		}
	}
	refusals := func() int {
		return strings.Count(s.logs(), "Redirect listener: refusing connections from users other than uid 0")
	}
	attack()
	if n := p.count("authorization_code"); n != 0 {
		t.Errorf("%d code exchanges after another user's redirects", n)
	}
	if n := refusals(); n != 1 {
		t.Errorf("%d refusal lines for one burst, want 1:\n%s", n, s.logs())
	}
	s.authorise(t, "a")
	attack()
	if n := refusals(); n != 2 {
		t.Errorf("%d refusal lines for two bursts, want 2", n)
	}
}
