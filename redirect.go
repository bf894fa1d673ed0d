package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// maxRedirectRequest bounds a redirect (a GET of a few hundred bytes).
	maxRedirectRequest = 16 << 10
	// redirectTimeout bounds a whole redirect connection.
	redirectTimeout = 10 * time.Second
	// redirectHeaderTimeout bounds the handshake and request, which a
	// browser sends at once.
	redirectHeaderTimeout = 5 * time.Second
)

// redirectListener receives the browser's redirect on one port, for both
// loopback addresses where it can.
type redirectListener struct {
	st        *state
	ls        []net.Listener
	port      int
	missing   string      // a loopback address another program held on port at start
	tlsConfig *tls.Config // nil for plain HTTP
	conns     *connLimit  // shared by the HTTP and HTTPS listeners
	refusing  atomic.Bool // refusing other users' connections: logged once a burst
}

// maxPortTries bounds the search for a port free on both loopback addresses.
const maxPortTries = 64

// listenTCP is net.Listen; tests make it collide.
var listenTCP = net.Listen

// listenRedirect binds addr and the other loopback address on the same
// port: browsers resolve "localhost" to 127.0.0.1 or ::1, and whoever held
// the side pizauth lacked would receive the login. Port 0 is picked again
// until both are free; for a fixed port a taken side is returned as missing,
// for checkListeners to refuse any redirect_uri that reaches it.
func listenRedirect(addr string) (ls []net.Listener, port int, missing string, err error) {
	host, fixed, _ := net.SplitHostPort(addr) // the parser has checked it
	other := otherLoopback(host)
	for try := 1; ; try++ {
		l, err := listenTCP("tcp", addr)
		if err != nil {
			return nil, 0, "", fmt.Errorf("Can't listen on %s: %v", addr, err)
		}
		ls, port = []net.Listener{l}, l.Addr().(*net.TCPAddr).Port
		if other == "" {
			return ls, port, "", nil
		}
		l2, err := listenTCP("tcp", net.JoinHostPort(other, strconv.Itoa(port)))
		switch {
		case err == nil:
			return append(ls, l2), port, "", nil
		case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT):
			return ls, port, "", nil // this host has no such address
		case fixed != "0":
			logInfo("%v; no redirect_uri reaches that address, so pizauth goes on without it", err)
			return ls, port, other, nil
		}
		l.Close()
		if try == maxPortTries {
			return nil, 0, "", fmt.Errorf("Can't listen on %s: another program holds %s on every port tried (%d, the last: %v), where a browser resolving localhost would hand it the login; find it with 'ss -ltnp' (or 'netstat -an') and stop it", addr, other, maxPortTries, err)
		}
		logDebug("Trying another port: %v", err)
	}
}

// otherLoopback is the loopback address a browser resolving "localhost"
// may reach beside host's: "" unless host is one of them (or 0.0.0.0).
func otherLoopback(host string) string {
	if ip := net.ParseIP(host); ip.Equal(net.IPv6loopback) {
		return "127.0.0.1"
	} else if strings.EqualFold(host, "localhost") || ip.To4() != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return "::1"
	}
	return ""
}

// reaches says whether a browser sent to a's redirect_uri may connect to
// the loopback address ip: a literal reaches only itself.
func reaches(a *Account, ip string) bool {
	u, err := url.Parse(a.RedirectURI)
	return err == nil && (strings.EqualFold(u.Hostname(), "localhost") || net.ParseIP(u.Hostname()).Equal(net.ParseIP(ip)))
}

// checkListeners refuses, at start and at reload, an account whose redirect
// needs what the listeners, bound only at start, lack: the browser would
// reach nothing, the wrong protocol, or another user's program.
func checkListeners(c *Config, http, https *redirectListener) error {
	for _, a := range c.Accounts {
		scheme, r := "http", http
		if redirectHTTPS(a) {
			scheme, r = "https", https
		}
		switch {
		case a.AuthURI == "":
		case r == nil:
			return fmt.Errorf("account '%s' has an %s redirect_uri, but the server runs no %s listener (%s_listen was none when it started): restart the server to change listeners", cut(a.Name, maxShown), scheme, strings.ToUpper(scheme), scheme)
		case r.missing != "" && reaches(a, r.missing):
			return fmt.Errorf("account '%s': a browser may take its redirect_uri to %s, which another program held when the server started and would receive the login: use (and register with the provider) a redirect_uri of %s://%s/ instead of localhost (RFC 8252 §7.3), or free the port and restart the server",
				cut(a.Name, maxShown), net.JoinHostPort(r.missing, strconv.Itoa(r.port)), scheme, net.JoinHostPort(otherLoopback(r.missing), strconv.Itoa(r.port)))
		}
	}
	return nil
}

func (r *redirectListener) serve() {
	for _, l := range r.ls {
		go acceptLoop(l, "Redirect listener", r.conns, r.handle)
	}
}

// close stops listening; r may be nil.
func (r *redirectListener) close() {
	if r == nil {
		return
	}
	for _, l := range r.ls {
		l.Close()
	}
}

// connLimit caps the redirect listeners' open connections. At the cap the
// oldest is closed: a browser, answered at once, is never the oldest, so a
// flood of idle connections cannot lock it out.
type connLimit struct {
	mu      sync.Mutex
	max     int
	open    []*limitedConn // oldest first
	dropped int            // closed to make room since the cap was last free
}

type limitedConn struct {
	net.Conn
	cl *connLimit
}

func newConnLimit(max int) *connLimit { return &connLimit{max: max} }

// admit counts c in, closing the oldest if need be; a flood is logged when
// it starts and when it ends, not a line each.
func (cl *connLimit) admit(c net.Conn, what string) net.Conn {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.open) < cl.max {
		if cl.dropped > 1 {
			logWarn("%s: closed %d connections in all to stay within %d", what, cl.dropped, cl.max)
		}
		cl.dropped = 0
	} else {
		if cl.dropped++; cl.dropped == 1 {
			logWarn("%s: %d connections open: closing the oldest to make room", what, cl.max)
		}
		cl.open[0].Conn.Close()
		cl.open = slices.Delete(cl.open, 0, 1)
	}
	lc := &limitedConn{c, cl}
	cl.open = append(cl.open, lc)
	return lc
}

func (lc *limitedConn) Close() error {
	lc.cl.mu.Lock()
	if i := slices.Index(lc.cl.open, lc); i >= 0 {
		lc.cl.open = slices.Delete(lc.cl.open, i, i+1)
	}
	lc.cl.mu.Unlock()
	return lc.Conn.Close()
}

// handle serves one request on one connection, then closes it.
func (r *redirectListener) handle(c net.Conn) {
	defer c.Close()
	// Another user's program could replay a leaked state with its own code.
	if uid, err := tcpPeerUID(c); err == nil && uid != os.Getuid() {
		if !r.refusing.Swap(true) {
			logWarn("Redirect listener: refusing connections from users other than uid %d, whose browser alone may finish a login (logged once until one is accepted)", os.Getuid())
		}
		return
	}
	r.refusing.Store(false)
	c.SetDeadline(time.Now().Add(redirectTimeout))
	c.SetReadDeadline(time.Now().Add(redirectHeaderTimeout))
	if r.tlsConfig != nil {
		tc := tls.Server(c, r.tlsConfig)
		if err := tc.Handshake(); err != nil {
			logDebug("Redirect listener: TLS handshake failed: %v", err)
			return
		}
		c = tc
	}
	lr := &io.LimitedReader{R: c, N: maxRedirectRequest}
	req, err := http.ReadRequest(bufio.NewReaderSize(lr, 4096))
	if err != nil {
		// A slow client learns why it was cut off.
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if lr.N == 0 {
			reply(c, 400, "Request too large.")
		} else {
			reply(c, 400, "Malformed request.")
		}
		return
	}
	status, body := r.respond(req)
	reply(c, status, body)
}

// alreadyHandled answers any redirect with a state whose code has arrived.
const alreadyHandled = "pizauth is already processing this authentication: you can safely close this page."

// respond answers a redirect, starting the exchange of a valid code.
func (r *redirectListener) respond(req *http.Request) (int, string) {
	if req.Method != http.MethodGet || req.Host == "" {
		return 400, "Only GET requests with a Host header are accepted."
	}
	q := req.URL.Query()
	st := q.Get("state")
	if st == "" {
		return 404, "Not found."
	}
	p, ok := r.st.pendingByState(st)
	if !ok {
		return 200, "pizauth has no pending authorisation matching this request: it may have been used already or replaced. Request a fresh token (e.g. with 'pizauth refresh <account>') and follow the new URL."
	}
	// A second tab, a reload or the back button cannot undo a login whose
	// code has arrived.
	if p.used {
		return 200, alreadyHandled
	}
	if !r.matches(req, p.redirectURI) {
		return 404, "Not found."
	}
	if e := q.Get("error"); e != "" {
		msg := "Authorisation failed: " + clean(e, 100)
		if d := q.Get("error_description"); d != "" {
			msg += ": " + clean(d, maxErrorText)
		}
		r.st.authFailed(p.name, p.version, msg)
		return 400, msg
	}
	code := q.Get("code")
	if code == "" {
		return 400, "The request has no 'code' parameter."
	}
	if !r.st.beginExchange(p, code) {
		return 200, alreadyHandled
	}
	return 200, "pizauth processing authentication: you can safely close this page."
}

// matches says whether req came to the redirect URI sent: path, host and
// port, a missing one being the scheme's default (:80, :443).
func (r *redirectListener) matches(req *http.Request, redirectURI string) bool {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.tlsConfig != nil {
		scheme = "https"
	}
	wantPort := u.Port()
	if wantPort == "" {
		wantPort = defaultPort(u.Scheme)
	}
	want := u.Path
	if want == "" {
		want = "/"
	}
	got := req.URL.Path
	if got == "" {
		got = "/"
	}
	host, port, err := net.SplitHostPort(req.Host)
	if err != nil {
		host, port = req.Host, defaultPort(scheme)
	}
	return got == want && u.Scheme == scheme && strings.EqualFold(strings.Trim(host, "[]"), u.Hostname()) &&
		port == wantPort && port == strconv.Itoa(r.port)
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

func reply(w io.Writer, status int, body string) {
	body += "\n"
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}
