package main

// Status: what `pizauth status` shows of every account, as text and as
// JSON. Never a token.

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// statusFormatVersion changes with the `status -j` object's shape.
const statusFormatVersion = 1

// acctStatus is one account in `status -j`, and its `status` line's
// source; never with a token.
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
