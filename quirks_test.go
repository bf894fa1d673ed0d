package main

// Token endpoint answers in the shapes that real providers, and the CDNs,
// WAFs and proxies in front of them, send: what each does to a login and
// what the user is told. A new quirk joins as one row.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// quirk is one answer of a token endpoint.
type quirk struct {
	name   string
	status int
	header string // "Key: value" lines separated by "\n"
	body   string
	want   string // "token", "transient" (the login is kept) or "permanent" (dropped)
	// msg is part of what the user gets: for a transient answer, show's
	// answer once the token has expired; for a permanent one, the message
	// error_notify_cmd gets.
	msg string
	// wait is how long until the next attempt after a transient answer;
	// 0 means refresh_retry (40 s here).
	wait time.Duration
}

const (
	jsonCT = "Content-Type: application/json; charset=utf-8"
	htmlCT = "Content-Type: text/html; charset=UTF-8"
	// msTrace is what Microsoft appends to every error_description.
	msTrace = `\r\nTrace ID: 7c3a0d3e-5b1f-4e0c-9b7a-2f6d1c0e8a00\r\nCorrelation ID: 1f2e3d4c-5b6a-4789-8a7b-6c5d4e3f2a10\r\nTimestamp: 2026-01-01 12:00:00Z`
	msIDs   = `"timestamp":"2026-01-01 12:00:00Z","trace_id":"7c3a0d3e-5b1f-4e0c-9b7a-2f6d1c0e8a00","correlation_id":"1f2e3d4c-5b6a-4789-8a7b-6c5d4e3f2a10"`
	cfPage  = `<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<head><title>login.example.com | %s</title><meta charset="UTF-8" /></head>
<body><div id="cf-error-details"><h1>%s</h1><span>Ray ID: 8f0e1d2c3b4a5968</span></div></body></html>`
)

// msError is a Microsoft identity platform error body.
func msError(code string, n int, desc string) string {
	return `{"error":"` + code + `","error_description":"AADSTS` + strconv.Itoa(n) + `: ` + desc + msTrace + `","error_codes":[` + strconv.Itoa(n) + `],` + msIDs +
		`,"error_uri":"https://login.microsoftonline.com/error?code=` + strconv.Itoa(n) + `"}`
}

// cf is a Cloudflare error page.
func cf(what string) string { return strings.ReplaceAll(cfPage, "%s", what) }

var quirks = []quirk{
	// Microsoft identity platform (v2.0 and the v1 endpoint's strings).
	{"ms: v2.0 token", 200, jsonCT, `{"token_type":"Bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All https://outlook.office.com/SMTP.Send","expires_in":3599,"ext_expires_in":3599,"access_token":"EwBwA8l6BAAU.ms-v2-access","refresh_token":"M.C107_BAY.0.U.-ms-v2-refresh","id_token":"eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ4In0.sig"}`, "token", "", 0},
	{"ms: v1 token, expires_in as a string", 200, jsonCT, `{"token_type":"Bearer","scope":"https://outlook.office365.com/IMAP.AccessAsUser.All","expires_in":"3599","ext_expires_in":"3599","expires_on":"1767272399","not_before":"1767268499","resource":"https://outlook.office365.com","access_token":"eyJ0eXAi.ms-v1-access","refresh_token":"0.ARoA.ms-v1-refresh"}`, "token", "", 0},
	{"ms: AADSTS70008 refresh token expired", 400, jsonCT, msError("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."), "permanent", "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity", 0},
	{"ms: AADSTS50173 password changed", 400, jsonCT, msError("invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password."), "permanent", "usually the password was changed or the access revoked", 0},
	{"ms: AADSTS65001 consent revoked", 400, jsonCT, strings.Replace(msError("invalid_grant", 65001, "The user or administrator has not consented to use the application with ID 'x'."), `"error_uri"`, `"suberror":"consent_required","error_uri"`, 1), "permanent", "Microsoft's expire after 90 days unused. Run 'pizauth show a' to log in again", 0},
	{"ms: AADSTS50076 MFA required", 400, jsonCT, msError("interaction_required", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access 'x'."), "permanent", `error "interaction_required" (HTTP 400): AADSTS50076`, 0},
	{"ms: AADSTS7000215 bad client secret", 401, jsonCT, msError("invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'x'."), "permanent", "check client_id, client_secret and token_endpoint_auth_method", 0},
	{"ms: AADSTS90033 temporarily_unavailable with 400", 400, jsonCT, msError("temporarily_unavailable", 90033, "A transient error has occurred. Please try again."), "transient", `error "temporarily_unavailable" (HTTP 400): AADSTS90033`, 0},
	{"ms: AADSTS50000 server_error with 400", 400, jsonCT, msError("server_error", 50000, "There was an error issuing a token or an issue with our sign-in service."), "transient", `error "server_error" (HTTP 400)`, 0},
	{"ms: throttled, Retry-After 120", 429, jsonCT + "\nRetry-After: 120", msError("temporarily_unavailable", 50196, "The server terminated an operation because it encountered a client request loop."), "transient", "HTTP 429", 2 * time.Minute},
	{"ms: 503, Retry-After shorter than refresh_retry", 503, "Content-Type: text/html\nRetry-After: 30", "<html><body>Service Unavailable</body></html>", "transient", "HTTP 503 (text/html)", 0},

	// Google.
	{"google: refresh without a new refresh token", 200, jsonCT, `{"access_token":"ya29.a0AfB_google-access","expires_in":3599,"scope":"https://mail.google.com/","token_type":"Bearer"}`, "token", "", 0},
	{"google: testing-status app, refresh_token_expires_in", 200, jsonCT, `{"access_token":"ya29.a0AfB_google-testing","expires_in":3599,"refresh_token_expires_in":604799,"scope":"https://mail.google.com/ openid","token_type":"Bearer","id_token":"eyJhbGciOiJSUzI1NiJ9.e30.sig"}`, "token", "", 0},
	{"google: expired or revoked", 400, jsonCT, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`, "permanent", `Token has been expired or revoked. The provider no longer accepts this login`, 0},
	{"google: Bad Request", 400, jsonCT, `{"error":"invalid_grant","error_description":"Bad Request"}`, "permanent", `a Google app in "testing" status gets refresh tokens that die after 7 days`, 0},
	{"google: deleted client", 401, jsonCT, `{"error":"invalid_client","error_description":"The OAuth client was not found."}`, "permanent", "The OAuth client was not found.; check client_id", 0},
	{"google: unauthorized_client", 400, jsonCT, `{"error":"unauthorized_client","error_description":"Unauthorized"}`, "permanent", `error "unauthorized_client" (HTTP 400): Unauthorized. The provider no longer accepts this login`, 0},
	{"google: backend error", 500, jsonCT, `{"error":"internal_failure","error_description":"Backend Error"}`, "transient", `error "internal_failure" (HTTP 500): Backend Error`, 0},
	{"google: 503 page", 503, htmlCT, `<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error 503 (Service Unavailable)!!1</title><p><b>503.</b> <ins>That’s an error.</ins></html>`, "transient", "HTTP 503 (text/html)", 0},

	// Okta.
	{"okta: token", 200, jsonCT, `{"token_type":"Bearer","expires_in":3600,"access_token":"eyJraWQiOiJ.okta-access","scope":"offline_access openid email","refresh_token":"3XqFhOp-okta-refresh","id_token":"eyJraWQiOiJ.e30.sig"}`, "token", "", 0},
	{"okta: refresh token expired", 400, jsonCT, `{"error":"invalid_grant","error_description":"The refresh token is invalid or expired."}`, "permanent", "The refresh token is invalid or expired", 0},
	{"okta: rate limited, no Retry-After", 429, jsonCT + "\nX-Rate-Limit-Limit: 600\nX-Rate-Limit-Remaining: 0\nX-Rate-Limit-Reset: 1767269000", `{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests.","errorLink":"E0000047","errorId":"oae1a2b3c4d","errorCauses":[]}`, "transient", "token endpoint returned HTTP 429)", 0},
	{"okta: client authentication failed", 401, jsonCT, `{"error":"invalid_client","error_description":"Client authentication failed. Either the client or the client credentials are invalid."}`, "permanent", "Client authentication failed", 0},

	// Keycloak.
	{"keycloak: token", 200, jsonCT, `{"access_token":"eyJhbGciOiJSUzI1NiJ9.kc-access","expires_in":300,"refresh_expires_in":1800,"refresh_token":"eyJhbGciOiJIUzI1NiJ9.kc-refresh","token_type":"Bearer","id_token":"eyJhbGciOiJSUzI1NiJ9.e30.sig","not-before-policy":0,"session_state":"5a8c2f4e-1d3b-4c6a-9e8f-7b6a5c4d3e2f","scope":"openid profile email"}`, "token", "", 0},
	{"keycloak: token not active", 400, jsonCT, `{"error":"invalid_grant","error_description":"Token is not active"}`, "permanent", "Token is not active", 0},
	{"keycloak: session not active", 400, jsonCT, `{"error":"invalid_grant","error_description":"Session not active"}`, "permanent", "Session not active", 0},
	{"keycloak: bad client", 401, jsonCT, `{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`, "permanent", "Invalid client or Invalid client credentials", 0},
	{"keycloak: starting up behind its proxy", 503, "Content-Type: text/plain", "Service Unavailable", "transient", "HTTP 503 (text/plain)", 0},

	// CDNs, WAFs and proxies in front of any of them.
	{"cloudflare 520", 520, htmlCT, cf("520: Web server is returning an unknown error"), "transient", "HTTP 520 (text/html)", 0},
	{"cloudflare 521", 521, htmlCT, cf("521: Web server is down"), "transient", "HTTP 521 (text/html)", 0},
	{"cloudflare 522, plain", 522, "Content-Type: text/plain; charset=UTF-8", "error code: 522", "transient", "HTTP 522 (text/plain)", 0},
	{"cloudflare 523", 523, htmlCT, cf("523: Origin is unreachable"), "transient", "HTTP 523", 0},
	{"cloudflare 524", 524, htmlCT, cf("524: A timeout occurred"), "transient", "HTTP 524", 0},
	{"cloudflare 525", 525, htmlCT, cf("525: SSL handshake failed"), "transient", "HTTP 525", 0},
	{"cloudflare 526", 526, htmlCT, cf("526: Invalid SSL certificate"), "transient", "HTTP 526", 0},
	{"cloudflare WAF 403", 403, htmlCT, cf("Attention Required! | Cloudflare"), "transient", "HTTP 403 (text/html)", 0},
	{"cloudflare 429, Retry-After a day: capped", 429, htmlCT + "\nRetry-After: 86400", cf("Error 1015: You are being rate limited"), "transient", "HTTP 429 (text/html)", time.Hour},
	{"akamai 503", 503, "Content-Type: text/html\nServer: AkamaiGHost", "<HTML><HEAD>\n<TITLE>Service Unavailable</TITLE>\n</HEAD><BODY>\n<H1>Service Unavailable - Zero size object</H1>\nThe server is temporarily unable to service your request.  Please try again\nlater.<P>\nReference&#32;&#35;15&#46;6b2e1002&#46;1767268800&#46;1a2b3c\n</BODY></HTML>", "transient", "HTTP 503 (text/html)", 0},
	{"akamai 403 access denied", 403, "Content-Type: text/html\nServer: AkamaiGHost", "<HTML><HEAD>\n<TITLE>Access Denied</TITLE>\n</HEAD><BODY>\n<H1>Access Denied</H1>\nYou don't have permission to access this server.<P>\n</BODY></HTML>", "transient", "HTTP 403 (text/html)", 0},
	{"cloudfront 403", 403, htmlCT + "\nX-Cache: Error from cloudfront", `<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY><H1>403 ERROR</H1></BODY></HTML>`, "transient", "HTTP 403 (text/html)", 0},
	{"nginx 502", 502, "Content-Type: text/html", "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n", "transient", "HTTP 502 (text/html)", 0},
	{"proxy 504", 504, "Content-Type: text/html", "<html><body><h1>504 Gateway Time-out</h1></body></html>", "transient", "HTTP 504", 0},
	{"proxy 408", 408, "Content-Type: text/html", "<html><body><h1>408 Request Time-out</h1></body></html>", "transient", "HTTP 408", 0},
	{"proxy 404", 404, "Content-Type: text/html", "<html><body><h1>404 Not Found</h1></body></html>", "transient", "HTTP 404 (text/html)", 0},
	{"302 to a maintenance page", 302, "Location: https://status.example.com/maintenance\nContent-Type: text/html", `<a href="https://status.example.com/maintenance">Found</a>.`, "transient", "redirected (HTTP 302)", 0},
	{"200 captive portal page", 200, htmlCT, "<html><head><title>Hotel Wi-Fi</title></head><body><form>Room number</form></body></html>", "transient", "did not send a JSON object (HTTP 200, text/html)", 0},
	{"200 empty", 200, "", "", "transient", "did not send a JSON object (HTTP 200, no content type)", 0},
	{"200 JSON from a proxy, no token", 200, jsonCT, `{"status":"ok"}`, "transient", "unusable token response (HTTP 200): no access_token", 0},
	{"200 token of another type", 200, jsonCT, `{"access_token":"mac-token","token_type":"mac","expires_in":3600}`, "transient", `token_type is "mac"`, 0},
	{"200 with an error: no 4xx, no verdict", 200, jsonCT, `{"error":"invalid_grant"}`, "transient", `error "invalid_grant" (HTTP 200)`, 0},
	{"500, Retry-After a date in the past", 500, jsonCT + "\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT", `{"error":"server_error"}`, "transient", `error "server_error" (HTTP 500)`, 0},
}

// quirkServer answers every request with q.
func quirkServer(t *testing.T, q quirk) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for _, l := range strings.Split(q.header, "\n") {
			if k, v, ok := strings.Cut(l, ": "); ok {
				w.Header().Set(k, v)
			}
		}
		w.WriteHeader(q.status)
		io.WriteString(w, q.body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestQuirks sends each answer to a refresh, a client-credentials renewal
// and a device poll, and checks what happens to the login (kept, renewed
// or dropped), when the next attempt is, and what the user is told.
func TestQuirks(t *testing.T) {
	logs := captureLog(t, lvlInfo)
	for _, q := range quirks {
		srv := quirkServer(t, q)
		var body struct {
			Access  string `json:"access_token"`
			Refresh string `json:"refresh_token"`
		}
		json.Unmarshal([]byte(q.body), &body)

		// A refresh, token expiring in 10 s.
		acct := schedAccount("a")
		acct.TokenURI = srv.URL
		s, clock := newTestState(t, &Config{Accounts: []*Account{acct}})
		activate(s, "a", clock.now(), 10*time.Second, "rt-old")
		s.mu.Lock()
		run := s.claimRefresh("a", s.accts["a"], clock.stamp())
		s.mu.Unlock()
		run()
		a := accountState(s, "a")
		switch got := classOf(a, "access-a"); {
		case got != q.want:
			t.Errorf("%s: refresh %s (%s), want %s", q.name, got, a.lastErr, q.want)
		case got == "token" && (a.access != body.Access || a.refresh != body.Refresh && (body.Refresh != "" || a.refresh != "rt-old")):
			t.Errorf("%s: adopted access %q, refresh %q; an absent refresh token keeps the old one", q.name, a.access, a.refresh)
		case got == "permanent" && !strings.Contains(a.lastErr, q.msg):
			t.Errorf("%s: error_notify_cmd gets %q; want it to contain %q", q.name, a.lastErr, q.msg)
		case got == "transient":
			if a.refresh != "rt-old" || a.access != "access-a" {
				t.Errorf("%s: a transient answer changed the token", q.name)
			}
			want := max(q.wait, acct.RefreshRetry)
			if _, next := s.due(clock.stamp()); next != want {
				t.Errorf("%s: next attempt in %v, want %v", q.name, next, want)
			}
			clock.advance(20 * time.Second) // the token has expired
			_, err := s.show("a", false)
			if err == nil || !strings.Contains(err.Error(), q.msg) || !strings.Contains(err.Error(), "tries again in "+inSeconds(want-20*time.Second).String()+". To log in again instead, run 'pizauth revoke a', then 'pizauth show a'") {
				t.Errorf("%s: show answers %v; want it to contain %q, the next attempt and how to log in again", q.name, err, q.msg)
			}
		}

		// A client-credentials renewal.
		cc := schedAccount("a")
		cc.TokenURI, cc.GrantType = srv.URL, grantClientCredentials
		s, clock = newTestState(t, &Config{Accounts: []*Account{cc}})
		activate(s, "a", clock.now(), 10*time.Second, "")
		s.mu.Lock()
		run = s.claimRefresh("a", s.accts["a"], clock.stamp())
		s.mu.Unlock()
		run()
		if got := classOf(accountState(s, "a"), "access-a"); got != q.want {
			t.Errorf("%s: client-credentials renewal %s, want %s", q.name, got, q.want)
		}

		// A device poll.
		dev := schedAccount("a")
		dev.TokenURI, dev.DeviceAuthURI = srv.URL, srv.URL
		s, clock = newTestState(t, &Config{Accounts: []*Account{dev}})
		version := pendingDevice(s, clock, 5*time.Second)
		s.pollDevice(context.Background(), "a", version, dev, "device-code")
		a = accountState(s, "a")
		got := map[tokenKind]string{kindActive: "token", kindPending: "transient", kindEmpty: "permanent"}[a.kind]
		if got != q.want || got == "transient" && a.pollFails != 1 {
			t.Errorf("%s: device poll %s (%d failed polls), want %s", q.name, got, a.pollFails, q.want)
		}
	}
	l := logs.String()
	for _, want := range []string{
		"INFO Transient error refreshing 'a' (attempt 1), will retry: token endpoint returned HTTP 520 (text/html); next attempt in 40s",
		"next attempt in 2m0s",
		"next attempt in 1h0m0s",
		"INFO Transient error polling for 'a' (attempt 1), will retry: token endpoint returned HTTP 520 (text/html)",
	} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	for _, secret := range []string{"rt-old", "access-a", "ms-v2-refresh", "device-code"} {
		if strings.Contains(l, secret) {
			t.Errorf("log contains the secret %q", secret)
		}
	}
}

// classOf says what an answer did to an account that held access.
func classOf(a acctState, access string) string {
	switch {
	case a.kind == kindEmpty:
		return "permanent"
	case a.kind == kindActive && a.access != access && a.failures == 0:
		return "token"
	case a.kind == kindActive && a.access == access && a.failures == 1:
		return "transient"
	}
	return "unclear"
}

// pendingDevice makes account "a" wait for the user to approve a device
// code granted with interval, as if the device endpoint had answered now.
func pendingDevice(s *state, clock *fakeClock, interval time.Duration) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accts["a"]
	a.kind, a.version = kindPending, s.bump()
	a.device = &deviceAuth{DeviceCode: "device-code", UserCode: "WDJB-MJHT", VerificationURI: "https://example.com/device", ExpiresIn: 15 * time.Minute, Interval: interval}
	a.deviceStart, a.lastPoll, a.interval, a.polling = clock.stamp(), clock.stamp(), interval, true
	return a.version
}
