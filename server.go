package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// connTimeout drops a client that connects and says nothing.
	connTimeout = 10 * time.Second
	// maxMessage bounds an error message sent to a client.
	maxMessage = 4 << 10
	// touchInterval keeps the socket from runtime-directory cleaners.
	touchInterval = 6 * time.Hour
	// maxRedirectConns caps redirect connections, each a descriptor the
	// Unix socket needs too; a login needs one or two.
	maxRedirectConns = 64
)

// errStopping answers requests for new work once shutdown has begun.
var errStopping = errors.New("pizauth authenticator is shutting down: run the command again once it has restarted")

// server ties the listeners to the state.
type server struct {
	confPath string
	sockPath string
	st       *state
	unix     *net.UnixListener
	http     *redirectListener // nil when http_listen = none
	https    *redirectListener // nil when https_listen = none
	fp, pub  string            // HTTPS certificate fingerprint and public key
	lock     *os.File          // flock'd for the server's lifetime

	cancel       context.CancelFunc
	stopping     atomic.Bool // shutdown has begun: refuse new work
	shutdownOnce sync.Once
	// reloadMu keeps reloads, which may wait on client_secret_cmd for
	// seconds, in order: an older file must never replace a newer one.
	reloadMu sync.Mutex
	done     chan struct{} // closed once the socket is closed
}

// prepareRuntimeDir creates both levels of the runtime directory if need
// be, refuses one checkDir refuses, and makes ours 0700.
func prepareRuntimeDir(dir string) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("Can't create the runtime directory '%s': %v", d, err)
		}
		fi, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("Can't use the runtime directory '%s': %v", d, err)
		}
		if err := checkDir(d, fi, true); err != nil {
			return err
		}
		if fi.Mode().Perm() != 0o700 {
			if err := os.Chmod(d, 0o700); err != nil {
				return fmt.Errorf("Can't make the runtime directory '%s' private (mode 0700): %v", d, err)
			}
		}
	}
	return nil
}

// lockRuntimeDir takes the lock the server holds until it exits, so that two
// servers starting at once cannot both remove a "stale" socket.
func lockRuntimeDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "pizauth.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("Can't open the lock file '%s': %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("pizauth authenticator already running")
		}
		return nil, fmt.Errorf("Can't lock '%s': %v", path, err)
	}
	return f, nil
}

// checkNotRunning refuses a live server's socket and removes a stale one.
func checkNotRunning(sock string) error {
	fi, err := os.Lstat(sock)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("Can't check the socket '%s': %v", sock, err)
	}
	if _, err := roundTripTo(sock, 2*time.Second, []byte("info")); err == nil || !errors.Is(err, errNotRunning) {
		return errors.New("pizauth authenticator already running")
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("'%s' exists and is not a socket: remove it", sock)
	}
	if err := os.Remove(sock); err != nil {
		return fmt.Errorf("Can't remove the stale socket '%s': %v", sock, err)
	}
	logInfo("Removed stale socket %s", sock)
	return nil
}

// startServer parses the configuration, binds every listener and serves;
// an error leaves nothing behind.
func startServer(confArg string) (*server, error) {
	confPath, err := confPath(confArg)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(confPath); err == nil {
		confPath = abs
	}
	dir := runtimeDir()
	if err := prepareRuntimeDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockRuntimeDir(dir)
	if err != nil {
		return nil, err
	}
	sock := socketPath(dir)
	// The configuration only now: a second server must not run a
	// client_secret_cmd.
	err = checkNotRunning(sock)
	var conf *Config
	if err == nil {
		conf, err = loadConfig(confPath)
	}
	if err != nil {
		lock.Close()
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &server{confPath: confPath, sockPath: sock, lock: lock, cancel: cancel, done: make(chan struct{})}
	s.st = newState(ctx, conf, newProvider())
	fail := func(err error) (*server, error) {
		s.closeListeners()
		cancel()
		s.st.events.close(0)
		lock.Close()
		return nil, err
	}
	conns := newConnLimit(maxRedirectConns)
	if conf.HTTPListen != "" {
		ls, port, missing, err := listenRedirect(conf.HTTPListen)
		if err != nil {
			return fail(err)
		}
		s.http = &redirectListener{st: s.st, ls: ls, port: port, missing: missing, conns: conns}
		s.st.httpPort = port
	}
	if conf.HTTPSListen != "" {
		cert, fp, pub, err := selfSignedCert()
		if err != nil {
			return fail(err)
		}
		ls, port, missing, err := listenRedirect(conf.HTTPSListen)
		if err != nil {
			return fail(err)
		}
		s.https = &redirectListener{st: s.st, ls: ls, port: port, missing: missing, conns: conns,
			tlsConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
		s.st.httpsPort = port
		s.fp, s.pub = fp, pub
	}
	if err := checkListeners(conf, s.http, s.https); err != nil {
		return fail(err)
	}
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fail(errors.New("pizauth authenticator already running"))
		}
		return fail(fmt.Errorf("Can't listen on '%s': %v", sock, err))
	}
	s.unix = ul
	if err := os.Chmod(sock, 0o600); err != nil {
		return fail(fmt.Errorf("Can't make the socket '%s' private: %v", sock, err))
	}

	go s.serveUnix()
	if s.http != nil {
		s.http.serve()
	}
	if s.https != nil {
		s.https.serve()
	}
	go s.st.refresher(ctx)
	go s.touchSocket(ctx)
	return s, nil
}

func (s *server) closeListeners() {
	s.http.close()
	s.https.close()
	if s.unix != nil {
		s.unix.Close() // also removes the socket file
	}
}

// shutdown stops the server, refusing new work at once but answering until
// the token requests already sent have finished (see drain) and the token
// events have run, so token_event_cmd can `pizauth dump` what they gave.
func (s *server) shutdown() {
	s.shutdownOnce.Do(func() {
		logInfo("Shutting down")
		s.stopping.Store(true)
		s.http.close()
		s.https.close()
		s.st.drain(s.cancel)
		s.st.events.close(eventQueueDrainTimeout)
		s.unix.Close()
		s.lock.Close()
		close(s.done)
	})
}

func (s *server) touchSocket(ctx context.Context) {
	t := time.NewTicker(touchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			if err := os.Chtimes(s.sockPath, now, now); err != nil {
				logWarn("Can't touch the socket: %v", err)
			}
		}
	}
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }

// acceptLoop hands each connection on l to handle until l is closed; limit
// caps how many are open. Other accept errors are retried after a pause.
func acceptLoop(l net.Listener, what string, limit *connLimit, handle func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			if isClosed(err) {
				return
			}
			logWarn("%s: %v", what, err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if limit != nil {
			c = limit.admit(c, what)
		}
		go handle(c)
	}
}

func (s *server) serveUnix() {
	acceptLoop(s.unix, "Socket", nil, func(c net.Conn) { s.handleConn(c.(*net.UnixConn)) })
}

// handleConn serves one request; a malformed one gets an error response.
func (s *server) handleConn(c *net.UnixConn) {
	defer c.Close()
	// In case someone loosens the runtime directory's 0700.
	if uid, err := peerUID(c); err == nil && uid != os.Getuid() {
		logWarn("Socket: refused a connection from uid %d (only uid %d may connect)", uid, os.Getuid())
		return
	}
	c.SetDeadline(time.Now().Add(connTimeout))
	b, err := readFrame(c, maxFrame)
	if err != nil {
		logDebug("Socket: bad request: %v", err)
		if errors.Is(err, errFrameTooLarge) {
			writeFrame(c, errResponse(fmt.Sprintf("Request refused: %v", err)))
		}
		return
	}
	req, err := decodeRequest(b)
	var resp []byte
	if err != nil {
		logDebug("Socket: bad request: %v", err)
		resp = errResponse(fmt.Sprintf("Request refused: %v", err))
	} else {
		resp = s.dispatch(req)
	}
	// The deadline bounds the client's turn; a reload waiting on a
	// client_secret_cmd may have used it up, and its answer is still due.
	c.SetWriteDeadline(time.Now().Add(connTimeout))
	if err := writeFrame(c, resp); err != nil {
		logDebug("Socket: can't send the response: %v", err)
	}
	if err != nil {
		return
	}
	switch req.cmd {
	case "shutdown":
		go s.shutdown()
	case "dump", "restore":
		// Several copies of every token were briefly held; the server will
		// idle for hours, so hand that peak back to the system now.
		b, req, resp = nil, request{}, nil
		debug.FreeOSMemory()
	}
}

// result builds a command's response, cleaning an error text, which may
// quote a client or a provider, into one inert line.
func result(err error, values ...[]byte) []byte {
	if err != nil {
		return errResponse(clean(err.Error(), maxMessage))
	}
	return okResponse(values...)
}

// dispatch runs one decoded request.
func (s *server) dispatch(req request) []byte {
	arg := func(i int) string { return string(req.args[i]) }
	logTrace("Socket: %s request", req.cmd)
	if s.stopping.Load() {
		switch req.cmd {
		case "refresh", "reload", "revoke", "restore":
			return result(errStopping)
		}
	}
	switch req.cmd {
	case "show":
		tok, err := s.st.show(arg(1), arg(0) == "u")
		return result(err, []byte(tok))
	case "refresh":
		return result(s.st.refreshCmd(arg(1), arg(0) == "u"))
	case "status":
		if arg(0) == "j" {
			return okResponse(s.st.statusJSON())
		}
		return okResponse([]byte(s.st.statusText()))
	case "info":
		return okResponse([]byte(portString(s.st.httpPort)), []byte(portString(s.st.httpsPort)), []byte(s.fp), []byte(s.confPath), []byte(s.pub))
	case "reload":
		return result(s.reload())
	case "revoke":
		return result(s.st.revoke(arg(0)))
	case "dump":
		b, err := encodeDump(s.st.snapshot())
		if err != nil {
			return errResponse(fmt.Sprintf("Can't make the dump: %v", err))
		}
		return okResponse(b)
	case "restore":
		entries, err := decodeDump(req.args[0])
		if err != nil {
			return errResponse(fmt.Sprintf("Can't restore: %v", err))
		}
		n, changed := s.st.restore(entries)
		msg := fmt.Sprintf("Restored %d of the dump's accounts", n)
		if len(changed) > 0 {
			msg += "; skipped '" + strings.Join(changed, "', '") + "': their settings changed since the dump"
		}
		logInfo("%s", msg)
		return okResponse([]byte(msg))
	case "shutdown":
		return okResponse()
	}
	return errResponse("unknown command")
}

func portString(p int) string {
	if p == 0 {
		return "none"
	}
	return strconv.Itoa(p)
}

// reload re-reads the configuration file; a bad one changes nothing.
func (s *server) reload() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.stopping.Load() {
		return errStopping
	}
	conf, err := loadConfig(s.confPath)
	if err == nil {
		if err = checkListeners(conf, s.http, s.https); err != nil {
			err = fmt.Errorf("%s: %v", s.confPath, err)
		}
	}
	if err != nil {
		logError("Reload failed, keeping the old configuration: %v", err)
		return err
	}
	if (conf.HTTPListen == "") != (s.http == nil) || (conf.HTTPSListen == "") != (s.https == nil) {
		logWarn("Listener addresses are read only at start: restart the server to change them")
	}
	for _, w := range conf.Warnings {
		logWarn("%s", w)
	}
	s.st.reload(conf)
	logInfo("Configuration reloaded")
	return nil
}
