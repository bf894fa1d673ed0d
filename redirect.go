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
	"slices"
	"strconv"
	"strings"
	"sync"
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

// redirectListener receives the browser's redirect on one port (for
// 127.0.0.1 and maybe ::1).
type redirectListener struct {
	st        *state
	ls        []net.Listener
	port      int
	tlsConfig *tls.Config // nil for plain HTTP
	conns     *connLimit  // shared by the HTTP and HTTPS listeners
}

// listenRedirect binds addr, and for the default address ::1 too: browsers
// resolve "localhost" to either.
func listenRedirect(addr string) ([]net.Listener, int, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, 0, fmt.Errorf("Can't listen on %s: %v", addr, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	ls := []net.Listener{l}
	if addr == defaultListen {
		if l6 := listenIPv6Loopback(port); l6 != nil {
			ls = append(ls, l6)
		}
	}
	return ls, port, nil
}

// listenIPv6Loopback binds [::1]:port, or warns why it could not, unless
// the host lacks IPv6: a browser resolving localhost to ::1 would hand the
// login to whoever holds the port.
func listenIPv6Loopback(port int) net.Listener {
	addr := net.JoinHostPort("::1", strconv.Itoa(port))
	l, err := net.Listen("tcp6", addr)
	switch {
	case err == nil:
		return l
	case errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT):
		logDebug("Not listening on %s: this host has no IPv6 loopback (%v)", addr, err)
	default:
		logWarn("Can't listen on %s (%v): a browser that resolves 'localhost' to ::1 will not reach pizauth; free the port or set http_listen/https_listen explicitly", addr, err)
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
