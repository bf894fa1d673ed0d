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

// refreshDue is when an Active token with a refresh token should next be
// refreshed (SPEC §7): after a failed attempt, refresh_retry after that
// attempt; otherwise refresh_before_expiry before it expires, or
// refresh_at_least after it was obtained, whichever comes first.
//
// refresh_retry only paces retries: applied to the first refresh, it would
// let a token that lives less than refresh_retry expire before its refresh.
// Against a provider that sends `expires_in: 0` (or 1), the expiry-based
// time is never sooner than the larger of minPacing and half the token's
// lifetime after it was obtained; refresh_at_least still applies to
// long-lived tokens, with minPacing as its own floor.
func refreshDue(acct *Account, obtained, expiry, lastAttempt time.Time, failures int) time.Time {
	if failures > 0 {
		return lastAttempt.Add(max(acct.RefreshRetry, minPacing))
	}
	due := expiry.Add(-acct.RefreshBeforeExpiry)
	if t := obtained.Add(max(minPacing, expiry.Sub(obtained)/2)); due.Before(t) {
		due = t
	}
	if t := obtained.Add(max(minPacing, acct.RefreshAtLeast)); t.Before(due) {
		due = t
	}
	return due
}

// sleepFor is how long the refresher sleeps when the next thing is due at
// next (the zero time meaning nothing is due).
func sleepFor(now, next time.Time) time.Duration {
	if next.IsZero() {
		return maxSleep
	}
	d := next.Sub(now)
	if d < 0 {
		return 0
	}
	return min(d, maxSleep)
}

// job is slow work the refresher found due; it runs without the lock.
type job func()

// due finds the work that is due at now, records that it has started, and
// returns it with the time the next thing falls due (zero if nothing will).
func (s *state) due(now time.Time) ([]job, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var jobs []job
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for name, a := range s.accts {
		switch a.kind {
		case kindActive:
			if a.refreshing {
				continue
			}
			if a.refresh == "" {
				if !now.Before(a.expiry) {
					// Without a refresh token the only way on is a new
					// authorisation, which the next `show` starts.
					a.reset()
					a.version = s.bump()
					s.events.push(name, "token_invalidated")
					logInfo("Account '%s': token expired and there is no refresh token", name)
					continue
				}
				later(a.expiry)
				continue
			}
			t := refreshDue(a.acct, a.obtained, a.expiry, a.lastAttempt, a.failures)
			if now.Before(t) {
				later(t)
				continue
			}
			jobs = append(jobs, s.claimRefresh(name, a, now))
		case kindPending:
			if isDevice(a.acct) && a.device != nil {
				if !now.Before(a.deviceExpiry) {
					version := a.version
					jobs = append(jobs, func() {
						s.authFailed(name, version, fmt.Sprintf("Device authorisation failed: the code expired before it was approved; run 'pizauth show %s' to get a new one", name))
					})
					continue
				}
				if !a.polling {
					if now.Before(a.nextPoll) {
						later(a.nextPoll)
					} else {
						a.polling = true
						ctx := s.workCtx(a)
						name, version, acct, dc := name, a.version, a.acct, a.device.DeviceCode
						jobs = append(jobs, func() { s.pollDevice(ctx, name, version, acct, dc) })
					}
				}
				later(a.deviceExpiry)
			}
			if s.conf.AuthNotifyCmd == "" || a.exchanging || (isDevice(a.acct) && a.device == nil) {
				continue
			}
			interval := max(s.conf.AuthNotifyInterval, minPacing)
			t := a.lastNotify.Add(interval)
			if !a.lastNotify.IsZero() && now.Before(t) {
				later(t)
				continue
			}
			a.lastNotify = now
			later(now.Add(interval))
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
		now := s.now()
		jobs, next := s.due(now)
		for _, j := range jobs {
			go j()
		}
		timer.Reset(sleepFor(now, next))
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
