package main

// Refresh: keeping a token alive without the user. The refresher's
// schedule (when each token is due, when to notify again), the refresh
// request itself, and what a failed refresh does to the login.

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// maxSleep caps the refresher's sleeps: its timers stop while a laptop
// sleeps, so it notices a due time passed in a suspend within maxSleep.
const maxSleep = 37 * time.Second

// minPacing is the shortest pause between two retries or notifications:
// every time setting may be 0s, which must not make the server spin.
const minPacing = time.Second

// refreshWait is the time until a token's next refresh (≤ 0: now), SPEC §7:
// after a failure, refresh_retry; else the first of refresh_before_expiry
// before expiry (at least half the lifetime and minPacing in, against
// `expires_in: 0`) and refresh_at_least (at least minPacing). refresh_retry
// never delays a first refresh, or a short-lived token would expire first.
func refreshWait(acct *Account, lifetime, age, sinceAttempt time.Duration, failures int) time.Duration {
	if failures > 0 {
		return max(acct.RefreshRetry, minPacing) - sinceAttempt
	}
	due := max(lifetime-acct.RefreshBeforeExpiry, minPacing, lifetime/2)
	due = min(due, max(minPacing, acct.RefreshAtLeast))
	return due - age
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
			if d := refreshWait(a.acct, a.lifetime, elapsed(now, a.obtained), elapsed(now, a.lastAttempt), a.failures); d > 0 {
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
					if d := a.interval - elapsed(now, a.lastPoll); d > 0 {
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

// doRefresh renews a token; a transient failure keeps it for a retry after
// refresh_retry, a permanent one drops it.
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
		// refreshing stays set while the hook decides.
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
	s.mu.Unlock()
	s.failed(name, version, fmt.Sprintf("Token refresh failed: %v", err), true, true)
}
