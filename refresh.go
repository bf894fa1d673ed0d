package main

import (
	"context"
	"fmt"
	"time"
)

// maxSleep caps every sleep of the refresher. Timers run on the monotonic
// clock, which stops while a laptop sleeps; due times are wall-clock
// instants. Waking at least this often means a machine that slept past a
// due time notices within maxSleep of waking.
const maxSleep = 37 * time.Second

// minPacing is the shortest pause between two attempts of the same kind
// (refreshes after a failure, notifications): every time setting may be 0s,
// as in the original, and a zero must not make the server spin.
const minPacing = time.Second

// refreshWait is how long from now until a renewable Active token should
// next be refreshed; zero or less means now. age is how long ago the token
// was obtained, sinceAttempt how long ago the last attempt started.
//
// SPEC §7: after a failed attempt, refresh_retry after that attempt;
// otherwise refresh_before_expiry before the token expires, or
// refresh_at_least after it was obtained, whichever comes first.
// refresh_retry only paces retries: applied to the first refresh, it would
// let a token that lives less than refresh_retry expire before its refresh.
// Against a provider that sends `expires_in: 0` (or 1), the expiry-based
// time is never sooner than the larger of minPacing and half the token's
// lifetime; refresh_at_least still applies to long-lived tokens, with
// minPacing as its own floor.
func refreshWait(acct *Account, lifetime, age, sinceAttempt time.Duration, failures int) time.Duration {
	if failures > 0 {
		return max(acct.RefreshRetry, minPacing) - sinceAttempt
	}
	due := max(lifetime-acct.RefreshBeforeExpiry, minPacing, lifetime/2)
	due = min(due, max(minPacing, acct.RefreshAtLeast))
	return due - age
}

// sleepFor is how long the refresher sleeps when the next thing is due in
// d (negative: nothing is due). Timers run on the monotonic clock, which
// stops while a laptop sleeps, so it never sleeps longer than maxSleep.
func sleepFor(d time.Duration) time.Duration {
	if d < 0 {
		return maxSleep
	}
	return min(d, maxSleep)
}

// job is slow work the refresher found due; it runs without the lock.
type job func()

// due finds the work that is due at now, records that it has started, and
// returns it with how long until the next thing falls due (negative if
// nothing will).
func (s *state) due(now stamp) ([]job, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var jobs []job
	next := time.Duration(-1)
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
					// Without a refresh token the only way on is a new
					// authorisation, which the next `show` starts.
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
						ctx := s.workCtx(a)
						name, version, acct, dc := name, a.version, a.acct, a.device.DeviceCode
						jobs = append(jobs, func() { s.pollDevice(ctx, name, version, acct, dc) })
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

// refresher runs until ctx is done, starting each due piece of work in its
// own goroutine so that one stalled provider delays nobody else.
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
