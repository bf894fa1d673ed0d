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
	"sync"
	"time"
)

// tokenKind is where an account is in its life: no token, waiting for the
// user to authorise in a browser (or on a device page), or holding a token.
type tokenKind int

const (
	kindEmpty tokenKind = iota
	kindPending
	kindActive
)

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

	// Pending (authorisation-code flow).
	authState   string // the OAuth2 state parameter
	verifier    string // the PKCE code verifier
	url         string // the authorisation URL shown to the user
	redirectURI string // the exact redirect_uri sent, port filled in
	exchanging  bool   // a code has arrived and is being exchanged
	lastNotify  time.Time

	// Pending (device flow). device is nil until the device authorisation
	// endpoint has answered.
	device       *deviceAuth
	deviceExpiry time.Time
	pollInterval time.Duration
	nextPoll     time.Time
	polling      bool

	// Active.
	access      string
	refresh     string // "" when the provider gave none
	obtained    time.Time
	expiry      time.Time
	refreshing  bool
	failures    int // consecutive transient refresh failures
	lastAttempt time.Time
}

// reset returns the account to Empty, cancelling any work in flight. The
// caller gives it a new version.
func (a *acctState) reset() {
	if a.cancel != nil {
		a.cancel()
	}
	*a = acctState{acct: a.acct, version: a.version}
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

// state owns all accounts behind one lock. Critical sections are short and
// never do network I/O, run hooks or touch the disk.
type state struct {
	mu       sync.Mutex
	conf     *Config
	accts    map[string]*acctState
	versions uint64

	now    func() time.Time // wall clock, monotonic reading stripped
	wakeCh chan struct{}    // pokes the refresher after a change
	ctx    context.Context  // cancelled at shutdown

	prov   *provider
	events *eventQueue

	// Fixed at start.
	httpPort, httpsPort int // 0 when the listener is off
}

func wallClock() time.Time { return time.Now().Round(0) }

// newState makes the state for conf. Listener ports are filled in by the
// server once bound.
func newState(ctx context.Context, conf *Config, prov *provider) *state {
	s := &state{
		conf:   conf,
		accts:  make(map[string]*acctState, len(conf.Accounts)),
		now:    wallClock,
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

// errUnavailable builds the message `show` and `refresh` give while an
// account waits for the user.
func unavailable(a *acctState, noURL bool) error {
	switch {
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

// show returns the account's token, or the error to show the user. It never
// waits on the network: whatever slow work the request implies (a refresh,
// a device authorisation) starts in the background.
func (s *state) show(name string, noURL bool) (string, error) {
	s.mu.Lock()
	a := s.accts[name]
	if a == nil {
		s.mu.Unlock()
		return "", noAccount(name)
	}
	switch a.kind {
	case kindActive:
		if s.now().Before(a.expiry) {
			tok := a.access
			s.mu.Unlock()
			return tok, nil
		}
		if a.refresh != "" {
			s.mu.Unlock()
			s.startRefresh(name)
			return "", errors.New("Access token has expired; a refresh is in progress: try again shortly")
		}
		// Expired and unrefreshable: only a new authorisation helps.
		a.reset()
		a.version = s.bump()
		s.events.push(name, "token_invalidated")
	case kindPending:
		err := unavailable(a, noURL)
		s.mu.Unlock()
		return "", err
	}
	s.mu.Unlock()
	if err := s.beginAuth(name, noURL); err != nil {
		return "", err
	}
	// A token arrived (a restore, say) between our look and beginAuth's:
	// show that instead of an empty line.
	return s.show(name, noURL)
}

// refresh asks for a new token: a refresh when there is a refresh token,
// else a new authorisation.
func (s *state) refreshCmd(name string, noURL bool) error {
	s.mu.Lock()
	a := s.accts[name]
	if a == nil {
		s.mu.Unlock()
		return noAccount(name)
	}
	if a.kind == kindActive && a.refresh != "" {
		s.mu.Unlock()
		s.startRefresh(name)
		return nil
	}
	if a.kind == kindPending {
		err := unavailable(a, noURL)
		s.mu.Unlock()
		return err
	}
	if a.kind == kindActive {
		// A token without a refresh token can only be replaced by asking
		// the user again, which is what `refresh` asks for.
		a.reset()
		a.version = s.bump()
		s.events.push(name, "token_invalidated")
	}
	s.mu.Unlock()
	return s.beginAuth(name, noURL)
}

// beginAuth moves an Empty account to Pending, notifies the user and returns
// the message that tells them where to authorise. Random values are made
// before taking the lock; if the account changed meanwhile we start over.
// It returns nil only if the account turned Active meanwhile.
func (s *state) beginAuth(name string, noURL bool) error {
	for {
		s.mu.Lock()
		a := s.accts[name]
		if a == nil {
			s.mu.Unlock()
			return noAccount(name)
		}
		if a.kind != kindEmpty {
			err := unavailable(a, noURL)
			if a.kind == kindActive {
				err = nil
			}
			s.mu.Unlock()
			return err
		}
		version, acct := a.version, a.acct
		if isDevice(acct) {
			a.kind = kindPending
			a.version = s.bump()
			ctx := s.workCtx(a)
			go s.deviceAuthorize(ctx, name, a.version, acct)
			err := unavailable(a, noURL)
			s.mu.Unlock()
			return err
		}
		redirect := s.redirectURI(acct)
		s.mu.Unlock()

		st, err := newStateParam()
		if err != nil {
			return fmt.Errorf("Can't make an authorisation request: %v", err)
		}
		verifier, err := newVerifier()
		if err != nil {
			return fmt.Errorf("Can't make an authorisation request: %v", err)
		}
		u, err := authURL(acct, redirect, st, challengeS256(verifier))
		if err != nil {
			return fmt.Errorf("Can't make an authorisation request: %v", err)
		}

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
			a.lastNotify = s.now()
		}
		s.mu.Unlock()
		logInfo("Account '%s' needs authorisation: %s", name, u)
		notifyAuth(cmd, name, u, "")
		s.wake()
		return unavailable(&acctState{acct: acct, url: u}, noURL)
	}
}

// redirectURI is the account's redirect URI with the port of the listener
// that will receive it. Called with s.mu held.
func (s *state) redirectURI(acct *Account) string {
	u, err := url.Parse(acct.RedirectURI)
	if err != nil {
		return acct.RedirectURI // the parser has validated it; unreachable
	}
	port := s.httpPort
	if u.Scheme == "https" && s.httpsPort != 0 {
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
	s.mu.Lock()
	a := s.accts[name]
	if a == nil || a.version != version {
		s.mu.Unlock()
		return
	}
	a.reset()
	a.version = s.bump()
	cmd := s.conf.ErrorNotifyCmd
	s.mu.Unlock()
	notifyError(cmd, name, msg)
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
	defer s.mu.Unlock()
	a := s.accts[name]
	if a == nil || a.version != version {
		logDebug("Discarding a token for '%s': the account changed while it was requested", name)
		return false
	}
	now := s.now()
	refresh := res.RefreshToken
	if refresh == "" && a.kind == kindActive {
		refresh = a.refresh // absent means keep the old one
	}
	a.reset()
	a.kind = kindActive
	a.version = s.bump()
	a.access, a.refresh = res.AccessToken, refresh
	a.obtained, a.expiry = now, now.Add(res.ExpiresIn)
	s.events.push(name, event)
	logInfo("Account '%s': %s (expires %s)", name, event, a.expiry.Format(time.RFC1123Z))
	s.wake()
	return true
}

// startRefresh starts a background refresh unless one is already running.
func (s *state) startRefresh(name string) {
	s.mu.Lock()
	a := s.accts[name]
	if a == nil || a.kind != kindActive || a.refresh == "" || a.refreshing {
		s.mu.Unlock()
		return
	}
	run := s.claimRefresh(name, a, s.now())
	s.mu.Unlock()
	go run()
}

// claimRefresh records that a refresh of a starts now and returns the work
// to run without the lock. Called with s.mu held, on an Active account with
// a refresh token and no refresh in flight.
func (s *state) claimRefresh(name string, a *acctState, now time.Time) job {
	a.refreshing = true
	a.lastAttempt = now
	ctx := s.workCtx(a)
	version, acct, rt := a.version, a.acct, a.refresh
	return func() { s.doRefresh(ctx, name, version, acct, rt) }
}

// transientLimit is the number of consecutive transient failures after which
// transient_error_if_cmd is asked whether to keep trying.
const transientLimit = 6

func (s *state) doRefresh(ctx context.Context, name string, version uint64, acct *Account, rt string) {
	res, err := s.prov.refresh(ctx, acct, rt)
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
		a.lastAttempt = s.now()
		ask := a.failures%transientLimit == 0 && s.conf.TransientErrorIfCmd != ""
		cmd := s.conf.TransientErrorIfCmd
		if !ask {
			a.refreshing = false
			n := a.failures
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
	a.reset()
	a.version = s.bump()
	s.events.push(name, "token_invalidated")
	cmd := s.conf.ErrorNotifyCmd
	s.mu.Unlock()
	notifyError(cmd, name, fmt.Sprintf("Token refresh failed: %v", err))
	s.wake()
}

// deviceAuthorize asks the device authorisation endpoint for a user code.
func (s *state) deviceAuthorize(ctx context.Context, name string, version uint64, acct *Account) {
	da, err := s.prov.deviceAuthorize(ctx, acct)
	if err != nil {
		s.authFailed(name, version, fmt.Sprintf("Device authorisation failed: %v", err))
		return
	}
	s.mu.Lock()
	a := s.accts[name]
	if a == nil || a.version != version {
		s.mu.Unlock()
		return
	}
	now := s.now()
	a.device = &da
	a.deviceExpiry = now.Add(da.ExpiresIn)
	a.pollInterval = da.Interval
	a.nextPoll = now.Add(da.Interval)
	cmd := s.conf.AuthNotifyCmd
	if cmd != "" {
		a.lastNotify = now
	}
	s.mu.Unlock()
	u := da.notifyURL()
	logInfo("Account '%s' needs authorisation: %s with code %s", name, da.VerificationURI, da.UserCode)
	notifyAuth(cmd, name, u, da.UserCode)
	s.wake()
}

// pollDevice asks the token endpoint once whether the user has approved the
// device request.
func (s *state) pollDevice(ctx context.Context, name string, version uint64, acct *Account, deviceCode string) {
	res, err := s.prov.pollDevice(ctx, acct, deviceCode)
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
		a.pollInterval += 5 * time.Second
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
	a.nextPoll = s.now().Add(a.pollInterval)
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
	if refresh != "" {
		if err := s.prov.revoke(ctx, acct, refresh, "refresh_token"); err != nil {
			notifyError(cmd, acct.Name, fmt.Sprintf("Revoking the refresh token at the provider failed: %v; it is forgotten locally, but may stay valid at the provider until it expires or you revoke it there", err))
		} else {
			logInfo("Account '%s': refresh token revoked at the provider", acct.Name)
		}
	}
	if err := s.prov.revoke(ctx, acct, access, "access_token"); err != nil {
		notifyError(cmd, acct.Name, fmt.Sprintf("Revoking the access token at the provider failed: %v; it is forgotten locally, but may stay valid at the provider until it expires", err))
	} else {
		logInfo("Account '%s': access token revoked at the provider", acct.Name)
	}
}

// reload installs a new configuration. Accounts whose security-relevant
// config is unchanged keep their state (and version); the others start
// Empty with a new version, which also discards their in-flight work.
func (s *state) reload(conf *Config) {
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
			logInfo("Account '%s' changed: its token state is dropped", acct.Name)
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
			e.Obtained, e.Expiry = a.obtained, a.expiry
		}
		entries = append(entries, e)
	}
	return entries
}

// restore adopts the Active tokens of a decoded dump for accounts whose
// security-relevant config is unchanged and which hold no Active token now.
// It returns how many tokens it adopted.
//
// A dumped token that has expired and has no refresh token is skipped: the
// refresher would drop it at once, and adopting it first would throw away
// a pending authorisation and report a token_invalidated for a token the
// server never used.
func (s *state) restore(entries []dumpEntry) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for _, e := range entries {
		a := s.accts[e.Name]
		if !e.Active || a == nil || a.kind == kindActive || e.RefreshToken == "" && !now.Before(e.Expiry) {
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
		a.obtained, a.expiry = e.Obtained, e.Expiry
		n++
	}
	if n > 0 {
		s.wake()
	}
	return n
}

// statusLines is the text of `pizauth status`.
func (s *state) statusText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.accts))
	for name := range s.accts {
		names = append(names, name)
	}
	sort.Strings(names)
	now := s.now()
	var b []byte
	for _, name := range names {
		a := s.accts[name]
		b = append(b, name...)
		b = append(b, ": "...)
		switch {
		case a.kind == kindEmpty:
			b = append(b, "No access token"...)
		case a.kind == kindPending:
			b = append(b, "Access token pending authentication"...)
			if a.device != nil {
				b = fmt.Appendf(b, " (code %s at %s)", a.device.UserCode, a.device.VerificationURI)
			}
			if !a.lastNotify.IsZero() {
				b = fmt.Appendf(b, " (last notification %s)", fmtTime(a.lastNotify))
			}
		case now.Before(a.expiry):
			b = fmt.Appendf(b, "Active access token (obtained %s; expires %s)", fmtTime(a.obtained), fmtTime(a.expiry))
		case a.lastAttempt.IsZero():
			b = append(b, "Access token expired (refresh not yet attempted)"...)
		default:
			b = fmt.Appendf(b, "Access token expired (last refresh attempt %s)", fmtTime(a.lastAttempt))
		}
		b = append(b, '\n')
	}
	return string(b)
}

func fmtTime(t time.Time) string { return t.Local().Format(time.RFC1123Z) }

// statusFormatVersion is bumped whenever the `status -j` object changes
// shape, so scripts can refuse what they do not understand.
const statusFormatVersion = 1

// statusJSON is the `pizauth status -j` object. It never holds a token.
func (s *state) statusJSON() []byte {
	type acctJSON struct {
		Name             string  `json:"name"`
		State            string  `json:"state"`
		Obtained         *string `json:"obtained"`
		Expires          *string `json:"expires"`
		LastRefresh      *string `json:"last_refresh_attempt"`
		LastNotification *string `json:"last_notification"`
		UserCode         *string `json:"user_code"`
		VerificationURI  *string `json:"verification_uri"`
	}
	ts := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		v := t.Format(time.RFC3339)
		return &v
	}
	str := func(v string) *string { return &v }
	s.mu.Lock()
	now := s.now()
	out := struct {
		Version  int        `json:"status_format_version"`
		Accounts []acctJSON `json:"accounts"`
	}{Version: statusFormatVersion, Accounts: make([]acctJSON, 0, len(s.accts))}
	for name, a := range s.accts {
		j := acctJSON{Name: name}
		switch {
		case a.kind == kindEmpty:
			j.State = "empty"
		case a.kind == kindPending:
			j.State = "pending"
			j.LastNotification = ts(a.lastNotify)
			if a.device != nil {
				j.UserCode, j.VerificationURI = str(a.device.UserCode), str(a.device.VerificationURI)
			}
		default:
			j.State = "active"
			if !now.Before(a.expiry) {
				j.State = "expired"
			}
			j.Obtained, j.Expires, j.LastRefresh = ts(a.obtained), ts(a.expiry), ts(a.lastAttempt)
		}
		out.Accounts = append(out.Accounts, j)
	}
	s.mu.Unlock()
	sort.Slice(out.Accounts, func(i, k int) bool { return out.Accounts[i].Name < out.Accounts[k].Name })
	b, _ := json.Marshal(out)
	return append(b, '\n')
}
