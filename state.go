package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tokenKind is where an account is in its life: no token, waiting for the
// user to authorise in a browser (or on a device page) or for a first
// client-credentials answer, or holding a token.
type tokenKind int

const (
	kindEmpty tokenKind = iota
	kindPending
	kindActive
)

// stamp is one instant read from two clocks. Decisions compare how much
// time has passed since a stamp on both and take the larger (elapsed): the
// wall clock keeps running while a laptop sleeps, so a token that expired
// during a suspend is noticed at once; the monotonic clock never steps, so
// a wall clock set back by NTP or a restored VM snapshot cannot make an
// expired token look valid or postpone its refresh.
type stamp struct {
	wall time.Time     // shown to the user and stored in dumps
	mono time.Duration // since the server started; stops during a suspend
}

// elapsed is how long has passed between then and now, by whichever clock
// says more.
func elapsed(now, then stamp) time.Duration {
	return max(now.wall.Sub(then.wall), now.mono-then.mono)
}

var monoStart = time.Now()

func realClock() stamp {
	n := time.Now()
	return stamp{n.Round(0), n.Sub(monoStart)}
}

// acctState is everything the server knows about one account. It is only
// read or written with state.mu held.
//
// Versions. Slow work (a code exchange, a refresh, a device poll) runs
// without the lock and may take up to minutes. While it runs, the user may
// revoke the token, reload a config that changes the account, or restore a
// dump; the result of the slow work then belongs to a world that no longer
// exists and must be thrown away, or a revoked token could come back to
// life, or a token obtained with an old client_id could be filed under a new
// one. So every transition that replaces what the account *is* — its
// security-relevant config or the kind and credentials of its token — gives
// it a fresh version from a counter that never repeats, and slow work
// captures the version when it starts and writes its result only if the
// version is unchanged. Bookkeeping that does not change what the account
// is (notification times, failure counts, the refresh-in-progress flag,
// refresh_* settings changed by a reload) keeps the version, so that a
// harmless reload never discards a refresh whose rotated refresh token we
// would otherwise lose.
type acctState struct {
	acct    *Account
	version uint64
	kind    tokenKind

	// cancel aborts the slow work in flight for this version, if any, so a
	// revoke or reload stops a device poll or refresh at once.
	cancel context.CancelFunc

	// The last request that failed, in any kind (a refresh, or a device
	// or client-credentials request), and why: `show` reports it, and it
	// paces the next attempt by refresh_retry.
	lastAttempt stamp
	lastErr     string

	// Pending (authorisation-code flow).
	authState   string // the OAuth2 state parameter
	verifier    string // the PKCE code verifier
	url         string // the authorisation URL shown to the user
	redirectURI string // the exact redirect_uri sent, port filled in
	exchanging  bool   // a code has arrived and is being exchanged
	lastNotify  stamp

	// Pending on a first request (device authorisation or client
	// credentials): what the shows that arrive meanwhile wait on.
	first *firstAnswer

	// Pending (device flow). device is nil until the device authorisation
	// endpoint has answered.
	device      *deviceAuth
	deviceStart stamp
	interval    time.Duration
	lastPoll    stamp
	polling     bool

	// Active. lifetime is what expires_in said; expiry is obtained.wall
	// plus lifetime, for display and dumps only.
	access     string
	refresh    string // "" when the provider gave none
	obtained   stamp
	lifetime   time.Duration
	expiry     time.Time
	refreshing bool
	failures   int // consecutive transient refresh failures
}

// reset returns the account to Empty, cancelling any work in flight. The
// caller gives it a new version.
func (a *acctState) reset() {
	if a.cancel != nil {
		a.cancel()
	}
	*a = acctState{acct: a.acct, version: a.version}
}

// expired says whether an Active token's lifetime has passed by either
// clock.
func (a *acctState) expired(now stamp) bool { return elapsed(now, a.obtained) >= a.lifetime }

// renewable says whether an Active token can be replaced without a person:
// with its refresh token, or by asking again for client credentials.
func (a *acctState) renewable() bool { return a.refresh != "" || isCC(a.acct) }

// firstWait is how long the first `show` of a device-flow or
// client-credentials account waits for the provider, so that a person at a
// terminal gets the code or the token on the first try, while a mail
// program is never held up for long.
const firstWait = 5 * time.Second

// firstAnswer is a first request to a provider in flight. The goroutine
// that makes the request closes done whatever happens; shows that arrive
// before until wait for it without holding the lock.
type firstAnswer struct {
	done  chan struct{}
	until time.Time
}

func newFirstAnswer() *firstAnswer {
	return &firstAnswer{make(chan struct{}), time.Now().Add(firstWait)}
}

// waitable says whether a show arriving now should wait for the answer.
func (f *firstAnswer) waitable() bool {
	if f == nil {
		return false
	}
	select {
	case <-f.done:
		return false
	default:
		return time.Now().Before(f.until)
	}
}

// wait blocks until the answer is in, the window has passed, or ctx ends.
func (f *firstAnswer) wait(ctx context.Context) {
	t := time.NewTimer(time.Until(f.until))
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
	case <-ctx.Done():
	}
}

// notifyURL is the URL auth_notify_cmd gets for a device request: the
// complete URI (with the code filled in) when the provider gave one.
func (d *deviceAuth) notifyURL() string {
	if d.VerificationURIComplete != "" {
		return d.VerificationURIComplete
	}
	return d.VerificationURI
}

// isDevice says whether the account authorises with the device flow.
func isDevice(acct *Account) bool { return acct.DeviceAuthURI != "" }

// isCC says whether the account uses the client credentials grant.
func isCC(acct *Account) bool { return acct.GrantType == grantClientCredentials }

// state owns all accounts behind one lock. Critical sections are short and
// never do network I/O, run hooks, touch the disk or log.
type state struct {
	mu       sync.Mutex
	conf     *Config
	accts    map[string]*acctState
	versions uint64

	clock  func() stamp    // tests replace it to move time by hand
	wakeCh chan struct{}   // pokes the refresher after a change
	ctx    context.Context // cancelled at shutdown

	prov   *provider
	events *eventQueue

	// Fixed at start.
	httpPort, httpsPort int // 0 when the listener is off
}

// newState makes the state for conf. Listener ports are filled in by the
// server once bound.
func newState(ctx context.Context, conf *Config, prov *provider) *state {
	s := &state{
		conf:   conf,
		accts:  make(map[string]*acctState, len(conf.Accounts)),
		clock:  realClock,
		wakeCh: make(chan struct{}, 1),
		ctx:    ctx,
		prov:   prov,
	}
	s.events = newEventQueue(func() string {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.conf.TokenEventCmd
	})
	for _, acct := range conf.Accounts {
		s.accts[acct.Name] = &acctState{acct: acct, version: s.bump()}
	}
	return s
}

// stampAt is the stamp of a past wall-clock instant (a token obtained by
// an earlier server), assuming the wall clock was right meanwhile.
func (s *state) stampAt(wall time.Time) stamp {
	now := s.clock()
	return stamp{wall, now.mono - now.wall.Sub(wall)}
}

// bump returns a version never used before. Called with s.mu held.
func (s *state) bump() uint64 {
	s.versions++
	return s.versions
}

// wake asks the refresher to recompute its schedule.
func (s *state) wake() {
	select {
	case s.wakeCh <- struct{}{}:
	default:
	}
}

// workCtx makes the context for slow work on a, stored so that the next
// transition can cancel it. Called with s.mu held. New work only starts once
// the previous piece has finished (refreshing, polling and exchanging
// guard that), so the previous context is released here: otherwise every
// device poll and every retried refresh would leave a context registered
// with s.ctx until the account next changed.
func (s *state) workCtx(a *acctState) context.Context {
	if a.cancel != nil {
		a.cancel()
	}
	ctx, cancel := context.WithCancel(s.ctx)
	a.cancel = cancel
	return ctx
}

// pace is the least time between two attempts at the same request:
// refresh_retry, never below minPacing.
func pace(acct *Account) time.Duration { return max(acct.RefreshRetry, minPacing) }

// inSeconds rounds a wait up to whole seconds for a message.
func inSeconds(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}

// unavailable is the answer of `show` and `refresh` while an account waits
// for the user or for a first answer from its provider.
func unavailable(a *acctState, noURL bool) error {
	switch {
	case isCC(a.acct):
		return errors.New("Token unavailable: waiting for the token endpoint; try again in a few seconds")
	case noURL:
		return errors.New("Token unavailable until authorised")
	case isDevice(a.acct) && a.device == nil:
		return errors.New("Token unavailable until authorised (waiting for the device authorisation endpoint: try again in a few seconds)")
	case isDevice(a.acct):
		return fmt.Errorf("Token unavailable until authorised with URL %s and code %s", a.device.VerificationURI, a.device.UserCode)
	}
	return fmt.Errorf("Token unavailable until authorised with URL %s", a.url)
}

func noAccount(name string) error { return fmt.Errorf("No account '%s'", name) }

// show returns the account's token, or the error to show the user. Only
// the first request of a device-flow or client-credentials account makes it
// wait, for at most firstWait; everything else it implies (a refresh, a new
// authorisation) starts in the background.
func (s *state) show(name string, noURL bool) (string, error) {
	return s.answer(name, noURL, false)
}

// refreshCmd asks for a new token: a refresh (or client-credentials
// request) when the account has a renewable token, else a new
// authorisation. Unlike show, it does not wait out refresh_retry after a
// failure: the user asked for it.
func (s *state) refreshCmd(name string, noURL bool) error {
	_, err := s.answer(name, noURL, true)
	return err
}

// answer does the work of show (explicit false) and refresh (true). It
// waits at most once, for a first answer, then answers with what is there.
func (s *state) answer(name string, noURL, explicit bool) (string, error) {
	for waited := false; ; waited = true {
		tok, wait, err := s.answerOnce(name, noURL, explicit && !waited)
		if wait == nil || waited {
			return tok, err
		}
		wait.wait(s.ctx)
	}
}

// errRefreshing is the answer for an expired token while its refresh runs.
var errRefreshing = errors.New("Access token has expired; a refresh is in progress: try again shortly")

// answerOnce looks at the account once. It returns the token, or the error
// to give the user, or a first request to wait for before looking again.
func (s *state) answerOnce(name string, noURL, explicit bool) (string, *firstAnswer, error) {
	s.mu.Lock()
	a := s.accts[name]
	if a == nil {
		s.mu.Unlock()
		return "", nil, noAccount(name)
	}
	now := s.clock()
	if s.ctx.Err() != nil && (a.kind != kindActive || a.expired(now)) {
		// Shutting down: a valid token is still served, but nothing new
		// starts, least of all a login whose redirect nobody would receive.
		s.mu.Unlock()
		return "", nil, errStopping
	}
	switch a.kind {
	case kindActive:
		if !a.expired(now) && !(explicit && a.renewable()) {
			tok := a.access
			s.mu.Unlock()
			return tok, nil, nil
		}
		if a.renewable() {
			var err error
			var run job
			switch {
			case a.refreshing:
				err = errRefreshing
			case !explicit && elapsed(now, a.obtained) < minPacing:
				// expires_in was 0: asking again at once could spin.
				err = errors.New("Access token has expired: the provider issued it with no lifetime; try again shortly")
			case !explicit && !a.lastAttempt.wall.IsZero() && elapsed(now, a.lastAttempt) < pace(a.acct):
				err = fmt.Errorf("Access token has expired; the last refresh attempt failed (%s): the next is due in %s", a.lastErr, inSeconds(pace(a.acct)-elapsed(now, a.lastAttempt)))
			default:
				run, err = s.claimRefresh(name, a, now), errRefreshing
			}
			s.mu.Unlock()
			if run != nil {
				go run()
			}
			if explicit {
				err = nil // the refresh is scheduled, or already running
			}
			return "", nil, err
		}
		// Expired, or the user asked for a new token, and only a new
		// authorisation helps.
		a.reset()
		a.version = s.bump()
		s.events.push(name, "token_invalidated")
	case kindPending:
		wait := a.first
		if !wait.waitable() {
			wait = nil
		}
		err := unavailable(a, noURL)
		s.mu.Unlock()
		return "", wait, err
	}
	if (isCC(a.acct) || isDevice(a.acct)) && !explicit && a.lastErr != "" && elapsed(now, a.lastAttempt) < pace(a.acct) {
		err := fmt.Errorf("%s; pizauth will try again in %s (or run 'pizauth refresh %s' now)", a.lastErr, inSeconds(pace(a.acct)-elapsed(now, a.lastAttempt)), name)
		s.mu.Unlock()
		return "", nil, err
	}
	if isCC(a.acct) || isDevice(a.acct) {
		wait := s.beginRequest(name, a)
		err := unavailable(a, noURL)
		s.mu.Unlock()
		return "", wait, err
	}
	s.mu.Unlock()
	if err, again := s.beginAuth(name, noURL); !again {
		return "", nil, err
	}
	// The account changed under beginAuth (a restore, a reload): look
	// at what it is now.
	return s.answerOnce(name, noURL, explicit)
}

// beginRequest moves an Empty device-flow or client-credentials account to
// Pending and starts its first request. Called with s.mu held.
func (s *state) beginRequest(name string, a *acctState) *firstAnswer {
	first := newFirstAnswer()
	a.reset()
	a.kind, a.version, a.first = kindPending, s.bump(), first
	ctx, version, acct := s.workCtx(a), a.version, a.acct
	if isCC(acct) {
		go s.requestCC(ctx, first, name, version, acct)
	} else {
		go s.deviceAuthorize(ctx, first, name, version, acct)
	}
	return first
}

// beginAuth moves an Empty code-flow account to Pending, notifies the user
// and returns the message that tells them where to authorise. Random values
// are made before taking the lock; if the account changed meanwhile we
// start over. again reports that the account is no longer Empty, so that
// the caller looks at it afresh.
func (s *state) beginAuth(name string, noURL bool) (err error, again bool) {
	for {
		s.mu.Lock()
		a := s.accts[name]
		if a == nil {
			s.mu.Unlock()
			return noAccount(name), false
		}
		if a.kind != kindEmpty {
			s.mu.Unlock()
			return nil, true
		}
		version, acct := a.version, a.acct
		redirect := s.redirectURI(acct)
		s.mu.Unlock()

		st, err := newStateParam()
		if err != nil {
			return fmt.Errorf("Can't make an authorisation request: %v", err), false
		}
		verifier, err := newVerifier()
		if err != nil {
			return fmt.Errorf("Can't make an authorisation request: %v", err), false
		}
		u := authURL(acct, redirect, st, challengeS256(verifier))

		s.mu.Lock()
		a = s.accts[name]
		if a == nil || a.version != version || a.kind != kindEmpty {
			s.mu.Unlock()
			continue
		}
		a.kind = kindPending
		a.version = s.bump()
		a.authState, a.verifier, a.url, a.redirectURI = st, verifier, u, redirect
		cmd := s.conf.AuthNotifyCmd
		if cmd != "" {
			a.lastNotify = s.clock()
		}
		s.mu.Unlock()
		// Whoever reads the log must not be able to finish the login
		// with their own account: the state stays out of it.
		logInfo("Account '%s' needs authorisation: %s", name, strings.Replace(u, "state="+st, "state=…", 1))
		notifyAuth(cmd, name, u, "")
		s.wake()
		return unavailable(&acctState{acct: acct, url: u}, noURL), false
	}
}

// redirectURI is the account's redirect URI with the port of the listener
// that will receive it. Reload and start-up make sure that listener runs.
// Called with s.mu held.
func (s *state) redirectURI(acct *Account) string {
	u, err := url.Parse(acct.RedirectURI)
	if err != nil {
		return acct.RedirectURI // the parser has validated it; unreachable
	}
	port := s.httpPort
	if u.Scheme == "https" {
		port = s.httpsPort
	}
	u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	return u.String()
}

// pendingAuth is what the redirect listener needs to finish a code flow.
type pendingAuth struct {
	name, verifier, redirectURI string
	version                     uint64
	acct                        *Account
	exchanging                  bool
}

// pendingByState finds the pending request whose state parameter is st. The
// comparison is constant-time so response timing leaks nothing about the
// states of other pending requests.
func (s *state) pendingByState(st string) (pendingAuth, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found pendingAuth
	ok := false
	for name, a := range s.accts {
		if a.kind != kindPending || a.authState == "" {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(a.authState), []byte(st)) == 1 {
			found = pendingAuth{name, a.verifier, a.redirectURI, a.version, a.acct, a.exchanging}
			ok = true
		}
	}
	return found, ok
}

// authFailed returns a pending account to Empty and tells the user why.
func (s *state) authFailed(name string, version uint64, msg string) {
	s.failed(name, version, msg, false, true)
}

// failed is authFailed for every request. With paced set (a request that
// `show` repeats by itself: device authorisation, client credentials), the
// failure is also kept, so that the next show reports it and waits
// refresh_retry before asking the provider again. notify is false for a
// failure only time can fix, which the caller logs.
func (s *state) failed(name string, version uint64, msg string, paced, notify bool) {
	s.mu.Lock()
	a := s.accts[name]
	if a == nil || a.version != version {
		s.mu.Unlock()
		return
	}
	a.reset()
	a.version = s.bump()
	if paced {
		a.lastAttempt, a.lastErr = s.clock(), msg
	}
	cmd := s.conf.ErrorNotifyCmd
	s.mu.Unlock()
	if notify {
		notifyError(cmd, name, msg)
	}
	s.wake()
}

// beginExchange claims a pending request for the code that has arrived, so
// a reloaded browser page cannot start a second exchange of the same code.
func (s *state) beginExchange(p pendingAuth, code string) bool {
	s.mu.Lock()
	a := s.accts[p.name]
	if a == nil || a.version != p.version || a.kind != kindPending || a.exchanging {
		s.mu.Unlock()
		return false
	}
	a.exchanging = true
	ctx := s.workCtx(a)
	s.mu.Unlock()
	go s.exchange(ctx, p, code)
	return true
}

func (s *state) exchange(ctx context.Context, p pendingAuth, code string) {
	res, err := s.prov.exchangeCode(ctx, p.acct, code, p.verifier, p.redirectURI)
	if ctx.Err() != nil {
		return // shutdown, revoke or reload: nobody is waiting for this
	}
	if err != nil {
		logDebug("Code exchange for '%s' failed: %v", p.name, err)
		s.authFailed(p.name, p.version, fmt.Sprintf("Authorisation failed: %v", err))
		return
	}
	s.adopt(p.name, p.version, res, "token_new")
}

// adopt makes a fresh token the account's, if the account is still the one
// the token was requested for.
func (s *state) adopt(name string, version uint64, res tokenResult, event string) bool {
	s.mu.Lock()
	a := s.accts[name]
	if a == nil || a.version != version {
		s.mu.Unlock()
		logDebug("Discarding a token for '%s': the account changed while it was requested", name)
		return false
	}
	refresh := res.RefreshToken
	if refresh == "" && a.kind == kindActive {
		refresh = a.refresh // absent means keep the old one
	}
	if isCC(a.acct) {
		refresh = "" // never used: renewal asks for client credentials again
	}
	a.reset()
	a.kind = kindActive
	a.version = s.bump()
	a.access, a.refresh = res.AccessToken, refresh
	a.obtained, a.lifetime = s.clock(), res.ExpiresIn
	a.expiry = a.obtained.wall.Add(a.lifetime)
	expiry := a.expiry
	s.events.push(name, event)
	s.mu.Unlock()
	logInfo("Account '%s': %s (expires %s)", name, event, fmtTime(expiry))
	s.wake()
	return true
}

// claimRefresh records that a refresh of a starts now and returns the work
// to run without the lock. Called with s.mu held, on an Active, renewable
// account with no refresh in flight.
func (s *state) claimRefresh(name string, a *acctState, now stamp) job {
	a.refreshing = true
	a.lastAttempt = now
	ctx := s.workCtx(a)
	version, acct, rt := a.version, a.acct, a.refresh
	return func() { s.doRefresh(ctx, name, version, acct, rt) }
}

// transientLimit is the number of consecutive transient failures after which
// transient_error_if_cmd is asked whether to keep trying.
const transientLimit = 6

// doRefresh renews a token (with its refresh token, or with new client
// credentials) and classifies a failure: a transient one keeps the token
// and is retried after refresh_retry, a permanent one drops it.
func (s *state) doRefresh(ctx context.Context, name string, version uint64, acct *Account, rt string) {
	var res tokenResult
	var err error
	if isCC(acct) {
		res, err = s.prov.clientCredentials(ctx, acct)
	} else {
		res, err = s.prov.refresh(ctx, acct, rt)
	}
	if ctx.Err() != nil {
		return // shutdown, revoke or reload: nobody is waiting for this
	}
	if err == nil {
		s.adopt(name, version, res, "token_refreshed")
		return
	}
	var te *tokenError
	transient := errors.As(err, &te) && te.Transient
	s.mu.Lock()
	a := s.accts[name]
	if a == nil || a.version != version {
		s.mu.Unlock()
		return
	}
	if transient {
		a.failures++
		a.lastErr = err.Error()
		n, cmd := a.failures, s.conf.TransientErrorIfCmd
		if n%transientLimit != 0 || cmd == "" {
			a.refreshing = false
			s.mu.Unlock()
			logWarn("Transient error refreshing '%s' (attempt %d), will retry: %v", name, n, err)
			s.wake()
			return
		}
		// Keep refreshing set while the hook decides, so the refresher
		// does not start another attempt under its feet.
		s.mu.Unlock()
		logWarn("Transient error refreshing '%s', asking transient_error_if_cmd: %v", name, err)
		code, _ := runHook(ctx, "transient_error_if_cmd", cmd, []string{"PIZAUTH_ACCOUNT=" + name}, transientHookTimeout)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		a = s.accts[name]
		if a == nil || a.version != version {
			s.mu.Unlock()
			return
		}
		if code == 0 {
			a.refreshing = false
			s.mu.Unlock()
			s.wake()
			return
		}
		err = fmt.Errorf("%v (transient_error_if_cmd made it permanent)", err)
	}
	started := a.lastAttempt
	a.reset()
	a.version = s.bump()
	a.lastAttempt, a.lastErr = started, fmt.Sprintf("Token refresh failed: %v", err)
	s.events.push(name, "token_invalidated")
	cmd := s.conf.ErrorNotifyCmd
	s.mu.Unlock()
	notifyError(cmd, name, fmt.Sprintf("Token refresh failed: %v", err))
	s.wake()
}

// requestCC asks for a first client-credentials token.
func (s *state) requestCC(ctx context.Context, first *firstAnswer, name string, version uint64, acct *Account) {
	defer close(first.done)
	res, err := s.prov.clientCredentials(ctx, acct)
	switch {
	case ctx.Err() != nil:
	case err == nil:
		s.adopt(name, version, res, "token_new")
	default:
		// A transient failure is nothing the user can act on: it goes to
		// the log and to the next show, which retries after refresh_retry.
		var te *tokenError
		transient := errors.As(err, &te) && te.Transient
		if transient {
			logWarn("Transient error requesting a token for '%s', will retry: %v", name, err)
		}
		s.failed(name, version, fmt.Sprintf("Token request failed: %v", err), true, !transient)
	}
}

// deviceAuthorize asks the device authorisation endpoint for a user code.
func (s *state) deviceAuthorize(ctx context.Context, first *firstAnswer, name string, version uint64, acct *Account) {
	defer close(first.done)
	da, err := s.prov.deviceAuthorize(ctx, acct)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.failed(name, version, fmt.Sprintf("Device authorisation failed: %v", err), true, true)
		return
	}
	s.mu.Lock()
	a := s.accts[name]
	if a == nil || a.version != version {
		s.mu.Unlock()
		return
	}
	now := s.clock()
	a.device = &da
	a.deviceStart, a.lastPoll, a.interval = now, now, da.Interval
	cmd := s.conf.AuthNotifyCmd
	if cmd != "" {
		a.lastNotify = now
	}
	s.mu.Unlock()
	// The user code would let a log reader finish the login with their
	// own account: only the page to visit is logged.
	logInfo("Account '%s' needs authorisation at %s", name, da.VerificationURI)
	notifyAuth(cmd, name, da.notifyURL(), da.UserCode)
	s.wake()
}

// pollDevice asks the token endpoint once whether the user has approved the
// device request.
func (s *state) pollDevice(ctx context.Context, name string, version uint64, acct *Account, deviceCode string) {
	res, err := s.prov.pollDevice(ctx, acct, deviceCode)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		s.adopt(name, version, res, "token_new")
		return
	}
	var te *tokenError
	errors.As(err, &te)
	s.mu.Lock()
	a := s.accts[name]
	if a == nil || a.version != version {
		s.mu.Unlock()
		return
	}
	a.polling = false
	// slow_down is checked first: a provider may send it with a transient
	// status such as 429, and it must still lengthen the interval.
	switch {
	case te != nil && te.Code == "slow_down":
		a.interval += 5 * time.Second
	case te != nil && te.Code == "authorization_pending", te != nil && te.Transient:
	default:
		msg := fmt.Sprintf("Device authorisation failed: %v", err)
		switch {
		case te != nil && te.Code == "access_denied":
			msg = fmt.Sprintf("Device authorisation was denied at the provider (%v); run 'pizauth show %s' to get a new code", err, name)
		case te != nil && te.Code == "expired_token":
			msg = fmt.Sprintf("Device authorisation failed: the code expired before it was approved (%v); run 'pizauth show %s' to get a new one", err, name)
		}
		s.mu.Unlock()
		s.authFailed(name, version, msg)
		return
	}
	a.lastPoll = s.clock()
	s.mu.Unlock()
	s.wake()
}

// revoke forgets the account's token and any pending request. With a
// revoke_uri, the provider is told too, in the background.
func (s *state) revoke(name string) error {
	s.mu.Lock()
	a := s.accts[name]
	if a == nil {
		s.mu.Unlock()
		return noAccount(name)
	}
	wasActive := a.kind == kindActive
	access, refresh, acct := a.access, a.refresh, a.acct
	a.reset()
	a.version = s.bump()
	if wasActive {
		s.events.push(name, "token_revoked")
	}
	cmd := s.conf.ErrorNotifyCmd
	s.mu.Unlock()
	s.wake()
	if wasActive && acct.RevokeURI != "" {
		go s.revokeAtProvider(cmd, acct, access, refresh)
	}
	return nil
}

// revokeAtProvider tells the provider (RFC 7009) to forget both tokens. The
// refresh token goes first: revoking it usually revokes the access tokens
// made from it too.
func (s *state) revokeAtProvider(cmd string, acct *Account, access, refresh string) {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
	defer cancel()
	for _, t := range [...]struct{ tok, hint, what string }{
		{refresh, "refresh_token", "refresh token"},
		{access, "access_token", "access token"},
	} {
		if t.tok == "" {
			continue
		}
		err := s.prov.revoke(ctx, acct, t.tok, t.hint)
		switch {
		case s.ctx.Err() != nil:
			return
		case err != nil:
			notifyError(cmd, acct.Name, fmt.Sprintf("Revoking the %s at the provider failed: %v; it is forgotten locally, but may stay valid at the provider until it expires or you revoke it there", t.what, err))
		default:
			logInfo("Account '%s': %s revoked at the provider", acct.Name, t.what)
		}
	}
}

// reload installs a new configuration. Accounts whose security-relevant
// config is unchanged keep their state (and version); the others start
// Empty with a new version, which also discards their in-flight work.
func (s *state) reload(conf *Config) {
	var changed []string
	s.mu.Lock()
	accts := make(map[string]*acctState, len(conf.Accounts))
	for _, acct := range conf.Accounts {
		old := s.accts[acct.Name]
		if old != nil && old.acct.secureEqual(acct) {
			old.acct = acct
			accts[acct.Name] = old
			continue
		}
		if old != nil {
			old.reset()
			changed = append(changed, acct.Name)
		}
		accts[acct.Name] = &acctState{acct: acct, version: s.bump()}
	}
	for name, old := range s.accts {
		if accts[name] == nil {
			old.reset()
		}
	}
	s.accts = accts
	s.conf = conf
	s.mu.Unlock()
	for _, name := range changed {
		logInfo("Account '%s' changed: its token state is dropped", name)
	}
	s.wake()
}

// snapshot copies the state a dump holds.
func (s *state) snapshot() []dumpEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries := make([]dumpEntry, 0, len(s.accts))
	for _, acct := range s.conf.Accounts {
		a := s.accts[acct.Name]
		e := dumpEntry{Name: acct.Name, SecureKey: acct.secureKey()}
		if a.kind == kindActive {
			e.Active = true
			e.AccessToken, e.RefreshToken = a.access, a.refresh
			e.Obtained, e.Expiry = a.obtained.wall, a.expiry
		}
		entries = append(entries, e)
	}
	return entries
}

// restore adopts the Active tokens of a decoded dump for accounts whose
// security-relevant config is unchanged and which hold no Active token now.
// It returns how many tokens it adopted.
//
// A dumped token that has expired and cannot be renewed is skipped: the
// refresher would drop it at once, and adopting it first would throw away
// a pending authorisation and report a token_invalidated for a token the
// server never used.
func (s *state) restore(entries []dumpEntry) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	n := 0
	for _, e := range entries {
		a := s.accts[e.Name]
		if !e.Active || a == nil || a.kind == kindActive || e.RefreshToken == "" && !isCC(a.acct) && !now.wall.Before(e.Expiry) {
			continue
		}
		// Last, as the only check that allocates.
		if string(a.acct.secureKey()) != string(e.SecureKey) {
			continue
		}
		a.reset()
		a.kind = kindActive
		a.version = s.bump()
		a.access, a.refresh = e.AccessToken, e.RefreshToken
		a.obtained, a.lifetime, a.expiry = s.stampAt(e.Obtained), e.Expiry.Sub(e.Obtained), e.Expiry
		n++
	}
	if n > 0 {
		s.wake()
	}
	return n
}

// statusFormatVersion is bumped whenever the `status -j` object changes
// shape, so scripts can refuse what they do not understand.
const statusFormatVersion = 1

// acctStatus is one account in `pizauth status -j`, and the source of its
// line in `pizauth status`. It never holds a token.
type acctStatus struct {
	Name             string     `json:"name"`
	State            string     `json:"state"`
	Obtained         *time.Time `json:"obtained"`
	Expires          *time.Time `json:"expires"`
	LastRefresh      *time.Time `json:"last_refresh_attempt"`
	LastNotification *time.Time `json:"last_notification"`
	UserCode         *string    `json:"user_code"`
	VerificationURI  *string    `json:"verification_uri"`
	requesting       bool       // a first client-credentials request
}

// status describes every account, sorted by name.
func (s *state) status() []acctStatus {
	ts := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.Local().Truncate(time.Second)
		return &t
	}
	s.mu.Lock()
	now := s.clock()
	out := make([]acctStatus, 0, len(s.accts))
	for name, a := range s.accts {
		j := acctStatus{Name: name, State: "empty"}
		switch {
		case a.kind == kindPending:
			j.State, j.LastNotification, j.requesting = "pending", ts(a.lastNotify.wall), isCC(a.acct)
			if a.device != nil {
				j.UserCode, j.VerificationURI = &a.device.UserCode, &a.device.VerificationURI
			}
		case a.kind == kindActive:
			j.State = "active"
			if a.expired(now) {
				j.State = "expired"
			}
			j.Obtained, j.Expires, j.LastRefresh = ts(a.obtained.wall), ts(a.expiry), ts(a.lastAttempt.wall)
		}
		out = append(out, j)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, k int) bool { return out[i].Name < out[k].Name })
	return out
}

// statusText is the text of `pizauth status`.
func (s *state) statusText() string {
	var b []byte
	for _, a := range s.status() {
		b = append(b, a.Name+": "...)
		switch {
		case a.State == "empty":
			b = append(b, "No access token"...)
		case a.requesting:
			b = append(b, "Access token requested (waiting for the token endpoint)"...)
		case a.State == "pending":
			b = append(b, "Access token pending authentication"...)
			if a.UserCode != nil {
				b = fmt.Appendf(b, " (code %s at %s)", *a.UserCode, *a.VerificationURI)
			}
			if a.LastNotification != nil {
				b = fmt.Appendf(b, " (last notification %s)", fmtTime(*a.LastNotification))
			}
		case a.State == "active":
			b = fmt.Appendf(b, "Active access token (obtained %s; expires %s)", fmtTime(*a.Obtained), fmtTime(*a.Expires))
		case a.LastRefresh == nil:
			b = append(b, "Access token expired (refresh not yet attempted)"...)
		default:
			b = fmt.Appendf(b, "Access token expired (last refresh attempt %s)", fmtTime(*a.LastRefresh))
		}
		b = append(b, '\n')
	}
	return string(b)
}

func fmtTime(t time.Time) string { return t.Local().Format(time.RFC1123Z) }

// statusJSON is the `pizauth status -j` object.
func (s *state) statusJSON() []byte {
	b, _ := json.Marshal(struct {
		Version  int          `json:"status_format_version"`
		Accounts []acctStatus `json:"accounts"`
	}{statusFormatVersion, s.status()})
	return append(b, '\n')
}
