package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// maxRedirectRequest bounds a request to the redirect listener. A real
	// redirect is a GET with a query of a few hundred bytes.
	maxRedirectRequest = 16 << 10
	// redirectTimeout bounds a whole redirect connection, so idle or slow
	// clients cannot pile up.
	redirectTimeout = 10 * time.Second
)

// redirectListener receives the browser's redirect after authorisation on
// one port (over one or two sockets, for 127.0.0.1 and ::1).
type redirectListener struct {
	st        *state
	ls        []net.Listener
	port      int
	tlsConfig *tls.Config // nil for plain HTTP
}

// listenRedirect binds addr. The default address also gets ::1 on the same
// port, since browsers resolve "localhost" to either.
func listenRedirect(addr string) ([]net.Listener, int, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, 0, fmt.Errorf("Can't listen on %s: %v", addr, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	ls := []net.Listener{l}
	if addr == defaultListen {
		if l6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port))); err == nil {
			ls = append(ls, l6)
		} else {
			logDebug("Not listening on [::1]:%d: %v", port, err)
		}
	}
	return ls, port, nil
}

func (r *redirectListener) serve() {
	for _, l := range r.ls {
		go acceptLoop(l, "Redirect listener", r.handle)
	}
}

func (r *redirectListener) close() {
	for _, l := range r.ls {
		l.Close()
	}
}

// handle serves one request on one connection, then closes it.
func (r *redirectListener) handle(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(redirectTimeout))
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
		// A slow client has used up the deadline; give the 400 a moment
		// of its own so the client learns why it was cut off.
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

// respond decides the answer to a redirect request, and starts the code
// exchange when the request is a valid one.
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
	if p.exchanging || !r.st.beginExchange(p, code) {
		return 200, "pizauth is already processing this authentication: you can safely close this page."
	}
	return 200, "pizauth processing authentication: you can safely close this page."
}

// matches says whether req arrived at the redirect URI the account sent:
// same path, host and port.
func (r *redirectListener) matches(req *http.Request, redirectURI string) bool {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return false
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
		host, port = req.Host, ""
	}
	return got == want && strings.EqualFold(strings.Trim(host, "[]"), u.Hostname()) &&
		port == u.Port() && port == strconv.Itoa(r.port)
}

func reply(w io.Writer, status int, body string) {
	body += "\n"
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}
