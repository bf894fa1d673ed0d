package main

// Logins: how an account with no usable token gets one with a person in
// the loop or a first request. The code flow (its URL, state and verifier,
// the redirect it waits for and the code exchange), the device flow (the
// user code and the polls), and the first client-credentials request. What
// a finished login hands over is adopted in state.go.

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// firstWait is how long the first `show` of a device or client-credentials
// account waits for the provider: long enough for a first-try answer.
const firstWait = 5 * time.Second

// firstAnswer is a first request in flight, whose goroutine closes done;
// shows that arrive before until wait for it without the lock.
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

// notifyURL is the URL auth_notify_cmd gets: the complete URI, with the
// code in it, when the provider gave one.
func (d *deviceAuth) notifyURL() string {
	if d.VerificationURIComplete != "" {
		return d.VerificationURIComplete
	}
	return d.VerificationURI
}

// beginCodeLogin starts an authorisation-code login for a, which is Empty.
// Called with s.mu held; returns with it released. The random values are
// made without the lock; if the account changed meanwhile (a restore, a
// reload), look again.
func (s *state) beginCodeLogin(name string, a *acctState, noURL, explicit bool) (string, *firstAnswer, error) {
	version, acct, redirect := a.version, a.acct, s.redirectURI(a.acct)
	s.mu.Unlock()
	st, err := newStateParam()
	verifier, err2 := newVerifier()
	if err = errors.Join(err, err2); err != nil {
		return "", nil, fmt.Errorf("Can't make an authorisation request: %v", err)
	}
	u := authURL(acct, redirect, st, challengeS256(verifier))
	s.mu.Lock()
	if a = s.accts[name]; a == nil || a.version != version || a.kind != kindEmpty {
		s.mu.Unlock()
		return s.answerOnce(name, noURL, explicit)
	}
	a.kind, a.version = kindPending, s.bump()
	a.authState, a.verifier, a.url, a.redirectURI = st, verifier, u, redirect
	cmd := s.conf.AuthNotifyCmd
	if cmd != "" {
		a.lastNotify = s.clock()
	}
	err = unavailable(a, noURL)
	s.mu.Unlock()
	// A log reader with the state could finish the login with their own
	// account.
	logInfo("Account '%s' needs authorisation: %s", name, strings.Replace(u, "state="+st, "state=…", 1))
	notifyAuth(cmd, name, u, "")
	s.wake()
	return "", nil, err
}

// beginRequest starts a first device or client-credentials request.
// Called with s.mu held.
func (s *state) beginRequest(name string, a *acctState) *firstAnswer {
	first := newFirstAnswer()
	a.reset()
	a.kind, a.version, a.first = kindPending, s.bump(), first
	version, acct := a.version, a.acct
	go s.startWork(a, func(ctx context.Context) {
		if isCC(acct) {
			s.requestCC(ctx, first, name, version, acct)
		} else {
			s.deviceAuthorize(ctx, first, name, version, acct)
		}
	})()
	return first
}

// redirectURI is the redirect URI with its listener's port. Called with
// s.mu held.
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

// pendingAuth is what the redirect listener needs to finish a code flow;
// used says its state is used: the login's code has arrived, which decides
// it, and nothing else is set.
type pendingAuth struct {
	name, verifier, redirectURI string
	version                     uint64
	acct                        *Account
	used                        bool
}

// pendingByState finds the pending request with state st, or the account
// whose login used it, in constant time: timing must leak nothing of other
// requests' states.
func (s *state) pendingByState(st string) (pendingAuth, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found pendingAuth
	ok := false
	for name, a := range s.accts {
		if a.kind == kindPending && a.authState != "" && subtle.ConstantTimeCompare([]byte(a.authState), []byte(st)) == 1 {
			found, ok = pendingAuth{name, a.verifier, a.redirectURI, a.version, a.acct, false}, true
		}
		// Checked last, so that it wins: while its code is being
		// exchanged, a state is both pending and used.
		if a.usedState != "" && subtle.ConstantTimeCompare([]byte(a.usedState), []byte(st)) == 1 {
			found, ok = pendingAuth{used: true}, true
		}
	}
	return found, ok
}

// authFailed returns a pending account to Empty and tells the user why.
func (s *state) authFailed(name string, version uint64, msg string) {
	s.failed(name, version, msg, nil, true)
}

// beginExchange claims a pending request for its code: a reloaded page
// cannot start a second exchange. The code decides the login, so the
// account gets a new version: an error redirect read before this (another
// tab) then fails nothing.
func (s *state) beginExchange(p pendingAuth, code string) bool {
	s.mu.Lock()
	a := s.accts[p.name]
	if a == nil || a.version != p.version || a.kind != kindPending || a.exchanging {
		s.mu.Unlock()
		return false
	}
	a.exchanging, a.usedState, a.version = true, a.authState, s.bump()
	p.version = a.version
	run := s.startWork(a, func(ctx context.Context) { s.exchange(ctx, p, code) })
	s.mu.Unlock()
	go run()
	return true
}

func (s *state) exchange(ctx context.Context, p pendingAuth, code string) {
	res, err := s.prov.exchangeCode(ctx, p.acct, code, p.verifier, p.redirectURI)
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		// Revoke, reload or shutdown (which ends the retries): nobody is
		// waiting for this.
		return
	}
	if err != nil {
		logDebug("Code exchange for '%s' failed: %v", p.name, err)
		s.authFailed(p.name, p.version, fmt.Sprintf("Authorisation failed: %v", err))
		return
	}
	s.adopt(p.name, p.version, res, "token_new")
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
		// the log and to the next show, which retries after refresh_retry
		// or Retry-After.
		var te *tokenError
		final := errors.As(err, &te) && te.Permanent
		if !final {
			logInfo("Transient error requesting a token for '%s', will retry: %v", name, err)
		}
		s.failed(name, version, fmt.Sprintf("Token request failed: %v", err), err, final)
	}
}

// deviceAuthorize asks the device authorisation endpoint for a user code.
func (s *state) deviceAuthorize(ctx context.Context, first *firstAnswer, name string, version uint64, acct *Account) {
	defer close(first.done)
	da, err := s.prov.deviceAuthorize(ctx, acct)
	if ctx.Err() != nil || s.ctx.Err() != nil {
		return // nobody will poll for this code after a shutdown
	}
	if err != nil {
		s.failed(name, version, fmt.Sprintf("Device authorisation failed: %v", err), err, true)
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
	// Not the user code: a log reader could finish the login with it.
	logInfo("Account '%s' needs authorisation at %s", name, da.VerificationURI)
	notifyAuth(cmd, name, da.notifyURL(), da.UserCode)
	s.wake()
}

// pollDevice asks once whether the user has approved the device request.
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
	// The provider's "not yet" first: slow_down may come with a 429. Only
	// a failure to answer stretches the interval, until the next answer.
	fails := a.pollFails
	a.pollFails, a.retryAfter = 0, 0
	switch {
	case te != nil && te.Code == "slow_down":
		a.interval += 5 * time.Second
	case te != nil && te.Code == "authorization_pending":
	case te == nil || !te.Permanent:
		a.pollFails, a.retryAfter = fails+1, retryAfterOf(err)
		defer logInfo("Transient error polling for '%s' (attempt %d), will retry: %v", name, fails+1, err) // once unlocked
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
