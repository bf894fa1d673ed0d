package main

// Refresh: keeping a token alive without the user. The refresher's
// schedule (when each token is due, when to notify again), the refresh
// request itself, and what a failed refresh does to the login.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxSleep caps the refresher's sleeps: its timers stop while a laptop
// sleeps, so it notices a due time passed in a suspend within maxSleep.
const maxSleep = 37 * time.Second

// minPacing is the shortest pause between two retries or notifications:
// every time setting may be 0s, which must not make the server spin.
const minPacing = time.Second

// refreshWait is the time until a token's next refresh (≤ 0: now), SPEC §7:
// after a failure, refresh_retry, or the failed answer's Retry-After when
// that is longer; else the first of refresh_before_expiry before expiry (at
// least half the lifetime and minPacing in, against `expires_in: 0`) and
// refresh_at_least (at least minPacing). refresh_retry never delays a first
// refresh, or a short-lived token would expire first.
func refreshWait(acct *Account, lifetime, age, sinceAttempt, retryAfter time.Duration, failures int) time.Duration {
	if failures > 0 {
		return max(acct.RefreshRetry, minPacing, retryAfter) - sinceAttempt
	}
	due := max(lifetime-acct.RefreshBeforeExpiry, minPacing, lifetime/2)
	due = min(due, max(minPacing, acct.RefreshAtLeast))
	return due - age
}

// maxPollBackoff bounds how far failed device polls stretch the interval.
const maxPollBackoff = time.Minute

// pollWait is the pause between device polls (RFC 8628 §3.5): the interval
// granted, doubled for each failed poll in a row up to maxPollBackoff (or
// the interval, if longer), and never shorter than the last Retry-After.
func pollWait(interval time.Duration, fails int, retryAfter time.Duration) time.Duration {
	d := interval
	for ; fails > 0 && d < maxPollBackoff; fails-- {
		d *= 2
	}
	return max(min(d, max(maxPollBackoff, interval)), retryAfter)
}

// sleepFor is the refresher's sleep when the next thing is due in d
// (negative: nothing is).
func sleepFor(d time.Duration) time.Duration {
	if d < 0 {
		return maxSleep
	}
	return min(d, maxSleep)
}

// job is slow work the refresher found due; it runs without the lock.
type job func()

// due claims the work due at now, and says how long until the next is due
// (negative: never).
func (s *state) due(now stamp) ([]job, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var jobs []job
	next := time.Duration(-1)
	if s.ctx.Err() != nil {
		return nil, next // shutting down: nothing new starts
	}
	later := func(d time.Duration) {
		if next < 0 || d < next {
			next = max(d, 0)
		}
	}
	notifyEvery := max(s.conf.AuthNotifyInterval, minPacing)
	for name, a := range s.accts {
		switch a.kind {
		case kindActive:
			if a.refreshing {
				continue
			}
			if !a.renewable() {
				if a.expired(now) {
					// Only a new login helps; the next `show` starts it.
					a.reset()
					a.version = s.bump()
					s.events.push(name, "token_invalidated")
					jobs = append(jobs, func() { logInfo("Account '%s': token expired and there is no refresh token", name) })
					continue
				}
				later(a.lifetime - elapsed(now, a.obtained))
				continue
			}
			if d := refreshWait(a.acct, a.lifetime, elapsed(now, a.obtained), elapsed(now, a.lastAttempt), a.retryAfter, a.failures); d > 0 {
				later(d)
				continue
			}
			jobs = append(jobs, s.claimRefresh(name, a, now))
		case kindPending:
			if a.device != nil {
				left := a.device.ExpiresIn - elapsed(now, a.deviceStart)
				if left <= 0 {
					version := a.version
					jobs = append(jobs, func() {
						s.authFailed(name, version, fmt.Sprintf("Device authorisation failed: the code expired before it was approved; run 'pizauth show %s' to get a new one", name))
					})
					continue
				}
				later(left)
				if !a.polling {
					if d := pollWait(a.interval, a.pollFails, a.retryAfter) - elapsed(now, a.lastPoll); d > 0 {
						later(d)
					} else {
						a.polling = true
						name, version, acct, dc := name, a.version, a.acct, a.device.DeviceCode
						jobs = append(jobs, s.startWork(a, func(ctx context.Context) { s.pollDevice(ctx, name, version, acct, dc) }))
					}
				}
			}
			if s.conf.AuthNotifyCmd == "" || a.exchanging || isCC(a.acct) || (isDevice(a.acct) && a.device == nil) {
				continue
			}
			if !a.lastNotify.wall.IsZero() {
				if d := notifyEvery - elapsed(now, a.lastNotify); d > 0 {
					later(d)
					continue
				}
			}
			a.lastNotify = now
			later(notifyEvery)
			cmd, u, code := s.conf.AuthNotifyCmd, a.url, ""
			if a.device != nil {
				u, code = a.device.notifyURL(), a.device.UserCode
			}
			jobs = append(jobs, func() { notifyAuth(cmd, name, u, code) })
		}
	}
	return jobs, next
}

// refresher runs until ctx is done, each piece of work in a goroutine of
// its own, so one stalled provider delays nobody else.
func (s *state) refresher(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		jobs, next := s.due(s.clock())
		for _, j := range jobs {
			go j()
		}
		timer.Reset(sleepFor(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wakeCh:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
	}
}

// claimRefresh records that a refresh starts now, and returns the work to
// run without the lock. Called with s.mu held.
func (s *state) claimRefresh(name string, a *acctState, now stamp) job {
	a.refreshing = true
	a.lastAttempt = now
	version, acct, rt := a.version, a.acct, a.refresh
	return s.startWork(a, func(ctx context.Context) { s.doRefresh(ctx, name, version, acct, rt) })
}

// transientLimit is how many transient failures in a row make pizauth ask
// transient_error_if_cmd.
const transientLimit = 6

// doRefresh renews a token. Only the provider's verdict (see permanent)
// drops it; any other failure keeps it for a retry after refresh_retry or
// Retry-After, and the user hears of it once per outage, not per attempt.
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
	final := errors.As(err, &te) && te.Permanent
	s.mu.Lock()
	a := s.accts[name]
	if a == nil || a.version != version {
		s.mu.Unlock()
		return
	}
	if !final {
		now := s.clock()
		a.failures++
		a.lastAttempt, a.lastErr, a.retryAfter = now, err.Error(), retryAfterOf(err)
		n, cmd, notify := a.failures, s.conf.TransientErrorIfCmd, s.conf.ErrorNotifyCmd
		wait := refreshWait(a.acct, a.lifetime, elapsed(now, a.obtained), 0, a.retryAfter, n)
		ask := n%transientLimit == 0 && cmd != ""
		a.refreshing = ask // while the hook decides
		s.mu.Unlock()
		logInfo("Transient error refreshing '%s' (attempt %d), will retry: %v; next attempt in %s", name, n, err, inSeconds(wait))
		if n == 1 {
			notifyError(notify, name, fmt.Sprintf("Token refresh failed, pizauth keeps the login and retries until the provider answers: %v", err))
		}
		if !ask {
			s.wake()
			return
		}
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
	s.mu.Unlock()
	msg := fmt.Sprintf("Token refresh failed: %v", err)
	if final && !isCC(acct) && te.Code != "invalid_client" {
		msg = strings.TrimSuffix(msg, ".") + fmt.Sprintf(". The provider no longer accepts this login: usually the password was changed or the access revoked; a Google app in \"testing\" status gets refresh tokens that die after 7 days, and Microsoft's expire after 90 days unused. Run 'pizauth show %s' to log in again", acct.Name)
	}
	s.failed(name, version, msg, err, true)
}

// retryAfterOf is a failure's Retry-After, 0 when it had none.
func retryAfterOf(err error) time.Duration {
	var te *tokenError
	if errors.As(err, &te) {
		return te.RetryAfter
	}
	return 0
}
