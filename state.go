package main

// State: the one table of accounts behind the one lock, their versions,
// and what the commands do to it: `show` and `refresh` answered, a token
// adopted or dropped, `revoke`, `reload`, and the dump's snapshot and
// restore. Getting a token is in login.go, keeping it in refresh.go, and
// showing it in status.go.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// tokenKind is where an account is in its life: no token, waiting (for the
// user, or for a provider's first answer), or holding a token.
type tokenKind int

const (
	kindEmpty tokenKind = iota
	kindPending
	kindActive
)

// stamp is an instant on two clocks, and elapsed the time since one by the
// clock that says more: the wall clock runs on in a suspend; the monotonic
// clock never steps back, as NTP or a restored VM may set the wall clock.
type stamp struct {
	wall time.Time     // shown to the user and stored in dumps
	mono time.Duration // since the server started; stops during a suspend
}

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
// without the lock, for up to minutes. Meanwhile a revoke, a reload or a
// restore may change the account; the work's result then belongs to a
// world that no longer exists, and adopting it could revive a revoked
// token or file a token under another client_id. So every transition that
// replaces what the account *is* (its security-relevant config, or the
// kind and credentials of its token) gives it a fresh version from a
// counter that never repeats, and slow work writes its result only if the
// version it started with is unchanged. Bookkeeping (notification times,
// failure counts, the refresh-in-progress flag, refresh_* settings) keeps
// the version, so a harmless reload never discards a refresh whose rotated
// refresh token would otherwise be lost.
type acctState struct {
	acct    *Account
	version uint64
	kind    tokenKind

	cancel context.CancelFunc // aborts this version's slow work

	// The last attempt at a request and why it failed, for `show` to
	// report and to pace by refresh_retry, or by the failed answer's
	// Retry-After (retryAfter, also the device poll's) when that is longer.
	lastAttempt stamp
	lastErr     string
	retryAfter  time.Duration

	// Pending (authorisation-code flow).
	authState   string // the OAuth2 state parameter
	verifier    string // the PKCE code verifier
	url         string // the authorisation URL shown to the user
	redirectURI string // the exact redirect_uri sent, port filled in
	exchanging  bool   // a code has arrived and is being exchanged
	lastNotify  stamp

	// The state of the last login whose code arrived, kept by reset: any
	// later redirect with it is answered "already handled".
	usedState string

	first *firstAnswer // a first device or client-credentials request

	// Pending (device flow); device is nil until the endpoint has answered.
	device      *deviceAuth
	deviceStart stamp
	interval    time.Duration
	lastPoll    stamp
	polling     bool
	pollFails   int // failed polls in a row, which stretch the interval

	// Active. expiry (obtained.wall + lifetime) is for display and dumps.
	access     string
	refresh    string // "" when the provider gave none
	obtained   stamp
	lifetime   time.Duration
	expiry     time.Time
	refreshing bool
	failures   int // consecutive transient refresh failures

	warnedNoRefresh bool // the log has said why there is no refresh token
}

// reset returns the account to Empty, cancelling any work in flight. The
// caller gives it a new version.
func (a *acctState) reset() {
	if a.cancel != nil {
		a.cancel()
	}
	*a = acctState{acct: a.acct, version: a.version, usedState: a.usedState, warnedNoRefresh: a.warnedNoRefresh}
}

func (a *acctState) expired(now stamp) bool { return elapsed(now, a.obtained) >= a.lifetime }

// renewable says whether an Active token can be replaced without a person:
// with its refresh token, or by asking again for client credentials.
func (a *acctState) renewable() bool { return a.refresh != "" || isCC(a.acct) }

func isDevice(acct *Account) bool { return acct.DeviceAuthURI != "" }

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
	ctx    context.Context // cancelled, with mu held, when shutdown begins

	// Slow work runs under work, not ctx: a token request already sent
	// outlives the start of a shutdown (see drain). busy counts it.
	work    context.Context
	endWork context.CancelFunc
	busy    sync.WaitGroup

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
	s.work, s.endWork = context.WithCancel(context.Background())
	prov.stop = ctx // no retry starts once shutdown has begun
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

// bump returns a new version. Called with s.mu held.
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

// startWork makes f, slow work for a, into a job to run without the lock.
// Its context is for the next transition to cancel (the previous one,
// finished, is released), and shutdown waits for it. Work claimed once
// shutdown has begun runs with its context cancelled: it sends nothing.
// Called with s.mu held.
func (s *state) startWork(a *acctState, f func(ctx context.Context)) job {
	if a.cancel != nil {
		a.cancel()
	}
	ctx, cancel := context.WithCancel(s.work)
	a.cancel = cancel
	if s.ctx.Err() != nil {
		cancel()
		return func() { f(ctx) }
	}
	s.busy.Add(1)
	return func() { defer s.busy.Done(); f(ctx) }
}

// workGrace is how long shutdown waits for token requests already sent.
const workGrace = 10 * time.Second

// drain begins the shutdown of the state: stop (the cancel of s.ctx) ends
// the refresher, logins and notifications, and no slow work starts after
// it. Requests already sent may finish within workGrace: a provider that
// rotates refresh tokens has retired the one the last save holds once it
// has seen the request, so its answer is the only live one. It returns
// once all slow work has, its token events queued.
func (s *state) drain(stop context.CancelFunc) {
	s.mu.Lock()
	stop() // with the lock held: startWork sees it, or was counted first
	s.mu.Unlock()
	idle := make(chan struct{})
	go func() { s.busy.Wait(); close(idle) }()
	select {
	case <-idle:
		return
	case <-time.After(workGrace):
		logWarn("Stopping without the answers to token requests still running after %s: an account whose provider replaced its refresh token meanwhile will need a new login ('pizauth show ACCOUNT' once the server runs again)", workGrace)
	}
	s.endWork()
	<-idle
}

// retryIn is the time until the next attempt after a failed one may start:
// refresh_retry, or the failure's Retry-After when that is longer.
func (a *acctState) retryIn(now stamp) time.Duration {
	return max(a.acct.RefreshRetry, minPacing, a.retryAfter) - elapsed(now, a.lastAttempt)
}

// outage is the answer for an expired token whose refreshes fail in ways
// that may pass: why, when pizauth tries again, and how to give up instead.
func outage(name string, a *acctState, next string) error {
	return fmt.Errorf("Access token has expired and refreshing it failed (%s); pizauth keeps the login and tries again %s. To log in again instead, run 'pizauth revoke %s', then 'pizauth show %s'", a.lastErr, next, name, name)
}

// inSeconds rounds a wait up to whole seconds for a message.
func inSeconds(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}

// unavailable is the answer while an account is Pending.
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

// show returns the account's token, or the error to show the user. Only a
// first request waits (firstWait); anything else starts in the background.
func (s *state) show(name string, noURL bool) (string, error) {
	return s.answer(name, noURL, false)
}

// refreshCmd asks for a new token, without waiting out refresh_retry.
func (s *state) refreshCmd(name string, noURL bool) error {
	_, err := s.answer(name, noURL, true)
	return err
}

// answer does show's (explicit false) and refresh's work, waiting at most
// once, for a first answer.
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

// answerOnce returns the token, or the error to give the user, or a first
// request to wait for before looking again.
func (s *state) answerOnce(name string, noURL, explicit bool) (string, *firstAnswer, error) {
	s.mu.Lock()
	a := s.accts[name]
	if a == nil {
		s.mu.Unlock()
		return "", nil, noAccount(name)
	}
	now := s.clock()
	if s.ctx.Err() != nil && (explicit || a.kind != kindActive || a.expired(now)) {
		// Shutting down: a valid token is still served, but nothing new
		// starts, least of all a login whose redirect nobody would receive.
		s.mu.Unlock()
		return "", nil, errStopping
	}
	switch a.kind {
	case kindActive:
		if !a.expired(now) && !explicit {
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
			case !explicit && !a.lastAttempt.wall.IsZero() && a.retryIn(now) > 0:
				err = outage(name, a, "in "+inSeconds(a.retryIn(now)).String())
			default:
				run, err = s.claimRefresh(name, a, now), errRefreshing
			}
			if err == errRefreshing && a.failures > 0 {
				err = outage(name, a, "now")
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
	if (isCC(a.acct) || isDevice(a.acct)) && !explicit && a.lastErr != "" && a.retryIn(now) > 0 {
		err := fmt.Errorf("%s; pizauth will try again in %s (or run 'pizauth refresh %s' now)", a.lastErr, inSeconds(a.retryIn(now)), name)
		s.mu.Unlock()
		return "", nil, err
	}
	if isCC(a.acct) || isDevice(a.acct) {
		wait := s.beginRequest(name, a)
		err := unavailable(a, noURL)
		s.mu.Unlock()
		return "", wait, err
	}
	return s.beginCodeLogin(name, a, noURL, explicit)
}

// failed empties the account after a failed request (token_invalidated if
// it held a token). A cause is kept for show to report and to pace the next
// attempt by (nil: a failed login, which the next show starts afresh);
// notify is false for a failure only time fixes, which the caller logs.
func (s *state) failed(name string, version uint64, msg string, cause error, notify bool) {
	s.mu.Lock()
	a := s.accts[name]
	if a == nil || a.version != version {
		s.mu.Unlock()
		return
	}
	if a.kind == kindActive {
		s.events.push(name, "token_invalidated")
	}
	a.reset()
	a.version = s.bump()
	if cause != nil {
		a.lastAttempt, a.lastErr, a.retryAfter = s.clock(), msg, retryAfterOf(cause)
	}
	cmd := s.conf.ErrorNotifyCmd
	s.mu.Unlock()
	if notify {
		notifyError(cmd, name, msg)
	}
	s.wake()
}

// adopt makes a token the account's, if its version is still version.
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
	warn := refresh == "" && !isCC(a.acct) && !a.warnedNoRefresh
	a.warnedNoRefresh = a.warnedNoRefresh || warn
	s.events.push(name, event)
	s.mu.Unlock()
	logInfo("Account '%s': %s (expires %s)", name, event, fmtTime(expiry))
	if warn {
		logWarn("Account '%s': the provider sent no refresh token, so you will have to log in again when this token expires. Providers send one only when asked: for Microsoft, add the \"offline_access\" scope; for Google, pizauth sends access_type=offline, and auth_uri_fields = {\"prompt\": \"consent\"} makes Google send a refresh token again", name)
	}
	s.wake()
	return true
}

// revoke forgets the account's token or pending request, and tells a
// revoke_uri in the background.
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

// revokeAtProvider revokes both tokens (RFC 7009), the refresh token first,
// as that usually revokes the access tokens made from it.
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
		var te *tokenError
		switch {
		case s.ctx.Err() != nil:
			return
		case errors.As(err, &te) && te.Code == "invalid_token":
			// RFC 7009 wants 200 for a token the server does not know;
			// Google answers 400 invalid_token, e.g. for an access token
			// that went with its refresh token. Revoked all the same.
			logInfo("Account '%s': the provider no longer knows the %s: it was already revoked", acct.Name, t.what)
		case err != nil:
			notifyError(cmd, acct.Name, fmt.Sprintf("Revoking the %s at the provider failed: %v; it is forgotten locally, but may stay valid at the provider until it expires or you revoke it there", t.what, err))
		default:
			logInfo("Account '%s': %s revoked at the provider", acct.Name, t.what)
		}
	}
}

// reload installs a new configuration. Accounts whose security-relevant
// config changed start Empty with a new version; the others keep theirs.
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

// restore adopts a dump's tokens for unchanged accounts without an Active
// token, skipping expired ones that cannot be renewed. It counts them, and
// names the accounts whose settings changed since the dump.
func (s *state) restore(entries []dumpEntry) (n int, changed []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	for _, e := range entries {
		a := s.accts[e.Name]
		// Dumped times are trusted no further than a token response: a
		// future `obtained` (a clock run ahead, a forged dump) is now, the
		// lifetime is clamped, and expiry <= obtained means expired.
		age := max(now.wall.Sub(e.Obtained), 0)
		obtained, lifetime := now.wall.Add(-age), min(max(e.Expiry.Sub(e.Obtained), 0), maxExpiresIn)
		if !e.Active || a == nil || a.kind == kindActive || e.RefreshToken == "" && !isCC(a.acct) && age >= lifetime {
			continue
		}
		// Last, as the only check that allocates.
		if string(a.acct.secureKey()) != string(e.SecureKey) {
			changed = append(changed, e.Name)
			continue
		}
		a.reset()
		a.kind = kindActive
		a.version = s.bump()
		a.access, a.refresh = e.AccessToken, e.RefreshToken
		// The monotonic reading assumes the wall clock was right meanwhile.
		a.obtained, a.lifetime, a.expiry = stamp{obtained, now.mono - age}, lifetime, obtained.Add(lifetime)
		n++
	}
	if n > 0 {
		s.wake()
	}
	return n, changed
}
