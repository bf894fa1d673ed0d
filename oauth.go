package main

// The only code that talks to OAuth2 providers (SPEC §5, §7). Secrets
// leave only in request bodies and the Authorization header; error texts
// come from the status, content type and `error`/`error_description`,
// scrubbed of every secret we know.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// maxResponseBody caps a provider's answer (real ones are a few KiB).
	maxResponseBody = 1 << 20
	// maxExpiresIn clamps expires_in: some servers send nanoseconds.
	maxExpiresIn = 365 * 24 * time.Hour
	// maxErrorText bounds provider-supplied text quoted in an error.
	maxErrorText = 200
	// maxErrorCode bounds the OAuth `error` code quoted in an error.
	maxErrorCode = 64
	// maxShownURL bounds a verification URI, which must fit a hook's
	// argument list.
	maxShownURL = 2 << 10
	// maxUserCode bounds a device user code; real ones are 8 or 9 letters.
	maxUserCode = 64
	// maxRetryAfter caps the Retry-After we honour, so that a broken or
	// hostile header cannot park an account for days.
	maxRetryAfter         = time.Hour
	defaultDeviceInterval = 5 * time.Second
	// userAgent: some providers reject an empty one.
	userAgent = "pizauth"
)

// tokenResult is a successful token endpoint answer.
type tokenResult struct {
	AccessToken  string
	RefreshToken string        // "" when the provider sent none: keep the old one
	ExpiresIn    time.Duration // clamped to one year; Account.RefreshAtLeast when absent
}

// tokenError is every failure of a provider request. Msg is one line, fit
// to show a user, and contains no secret.
type tokenError struct {
	// Permanent is the provider's own verdict that the grant is over (see
	// permanent), or a configuration error; anything else may pass and is
	// retried.
	Permanent  bool
	RetryAfter time.Duration // the answer's Retry-After, at most maxRetryAfter
	Status     int           // HTTP status; 0 when no response arrived
	Code       string        // the OAuth `error` code, "" when there was none
	Msg        string

	network bool  // no complete response: exchangeCode retries these
	cause   error // for errors.Is; never part of Msg verbatim
}

func (e *tokenError) Error() string { return e.Msg }

func (e *tokenError) Unwrap() error { return e.cause }

// provider performs HTTP requests to OAuth2 endpoints for every account.
type provider struct {
	client     *http.Client
	timeout    time.Duration // whole request, body included
	retries    int           // extra attempts after a network failure in exchangeCode
	retryDelay time.Duration // pause between those attempts
	// sleep waits d or until ctx is done; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
	// stop, once done, ends the pause before a retry: a request already
	// sent may finish during a shutdown, but no new one starts. nil: never.
	stop context.Context
}

// newProvider returns a provider with SPEC.md §7's timeout and retry policy.
func newProvider() *provider {
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		// An idle connection's timer stops while a laptop sleeps, so one
		// kept across a suspend could be long dead, and a POST is not
		// retried. Token requests are minutes apart: open fresh ones.
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &provider{
		client:     newHTTPClient(tr),
		timeout:    30 * time.Second,
		retries:    10,
		retryDelay: 6 * time.Second,
		sleep:      sleepCtx,
	}
}

// newHTTPClient never follows redirects, which would lose the form (302)
// or replay it, secret and code included, wherever Location says (307).
func newHTTPClient(tr http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// authURL builds the URL the user opens (SPEC §5), appending to auth_uri
// textually so that it, and any query it has, is kept byte for byte.
func authURL(a *Account, redirectURI, state, challenge string) string {
	var b strings.Builder
	b.WriteString(a.AuthURI)
	sep := ""
	switch {
	case !strings.Contains(a.AuthURI, "?"):
		sep = "?"
	case strings.HasSuffix(a.AuthURI, "?"), strings.HasSuffix(a.AuthURI, "&"):
	default:
		sep = "&"
	}
	add := func(k, v string) {
		b.WriteString(sep)
		sep = "&"
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(v))
	}
	add("access_type", "offline")
	add("code_challenge", challenge)
	add("code_challenge_method", "S256")
	add("client_id", a.ClientID)
	add("redirect_uri", redirectURI)
	add("response_type", "code")
	add("state", state)
	if len(a.Scopes) > 0 {
		add("scope", strings.Join(a.Scopes, " "))
	}
	for _, kv := range a.AuthURIFields {
		add(kv.Key, kv.Value)
	}
	return b.String()
}

// post is the one place that sends a form to a provider, with client
// authentication (RFC 6749 §2.3.1): the secret in HTTP Basic or the body,
// never both, or else a fresh signed assertion (RFC 7523 §2.2) whose
// audience is the token endpoint, whichever endpoint uri is. Bounded by
// p.timeout and maxResponseBody; err is *tokenError.
func (p *provider) post(ctx context.Context, a *Account, uri string, form url.Values) (status int, hdr http.Header, body []byte, err error) {
	if err := checkURL(uri); err != nil {
		return 0, nil, nil, &tokenError{Permanent: true, Msg: fmt.Sprintf("an endpoint URL %v; fix it in the configuration", err)}
	}
	u, _ := url.Parse(uri)
	host := u.Host

	vals := make(url.Values, len(form)+2)
	for k, v := range form {
		vals[k] = append([]string(nil), v...)
	}
	vals.Del("client_secret")
	vals.Set("client_id", a.ClientID)
	basic := a.ClientSecret != "" && a.TokenEndpointAuthMethod == "client_secret_basic"
	if a.ClientSecret != "" && !basic {
		vals.Set("client_secret", a.ClientSecret)
	}
	if a.assertionKey.key != nil {
		jwt, err := a.assertionKey.assertion(a.ClientID, a.TokenURI)
		if err != nil {
			return 0, nil, nil, &tokenError{Msg: err.Error()}
		}
		vals.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		vals.Set("client_assertion", jwt)
	}

	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, rerr := http.NewRequestWithContext(rctx, http.MethodPost, uri, strings.NewReader(vals.Encode()))
	if rerr != nil {
		return 0, nil, nil, &tokenError{Permanent: true, Msg: fmt.Sprintf("cannot build a request for %s; check the endpoint URL in the configuration", host)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if basic {
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic.
		req.SetBasicAuth(url.QueryEscape(a.ClientID), url.QueryEscape(a.ClientSecret))
	}

	resp, derr := p.client.Do(req)
	if derr != nil {
		return 0, nil, nil, p.networkError(ctx, rctx, host, derr)
	}
	defer resp.Body.Close()
	status, hdr = resp.StatusCode, resp.Header
	body, derr = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if derr != nil {
		te := p.networkError(ctx, rctx, host, derr)
		te.Status = status
		return status, hdr, nil, te
	}
	if len(body) > maxResponseBody {
		return status, hdr, nil, &tokenError{Status: status,
			Msg: fmt.Sprintf("%s sent a response larger than 1 MiB (HTTP %d)", host, status)}
	}
	return status, hdr, body, nil
}

// networkError describes a failure to get a complete response, without a
// *url.Error's text, which repeats the URL (and a proxy's credentials), or
// a *net.OpError's, which repeats the address.
func (p *provider) networkError(parent, rctx context.Context, host string, err error) *tokenError {
	te := &tokenError{network: true, cause: err}
	var ne net.Error
	switch {
	case parent.Err() != nil:
		te.Msg = fmt.Sprintf("request to %s was cancelled", host)
		te.cause = parent.Err()
	case rctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		te.Msg = fmt.Sprintf("%s did not answer within %s", host, p.timeout)
	default:
		inner := err
		var ue *url.Error
		if errors.As(err, &ue) {
			inner = ue.Err
		}
		var oe *net.OpError
		if errors.As(inner, &oe) {
			inner = oe.Err
		}
		te.Msg = fmt.Sprintf("cannot reach %s: %s", host, clean(inner.Error(), maxErrorText))
	}
	return te
}

// permanent is the one rule for which answers end a grant: only the
// provider's own verdict, a JSON object whose `error` is a code other than
// the two RFC 6749 §5.2 defines for passing trouble, sent with a 4xx status
// other than 408 and 429. Everything else may come from a CDN, a WAF, a
// proxy or a captive portal between us and the provider (an HTML page, a
// 52x, a 403, a redirect to a maintenance page, a 200 that is no token), or
// from the provider's bad minute, and is retried: dropping a good refresh
// token costs the user a login, retrying a dead one only a request.
func permanent(status int, code string) bool {
	switch {
	case status < 400, status >= 500, status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return false
	}
	return code != "" && code != "temporarily_unavailable" && code != "server_error"
}

// retryAfter reads a Retry-After header (RFC 9110 §10.2.3: delta-seconds or
// an HTTP date) as a wait from now, capped at maxRetryAfter; 0 when absent,
// past or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// tokenRequest asks the token endpoint; a failure that may pass carries
// the answer's Retry-After.
func (p *provider) tokenRequest(ctx context.Context, a *Account, form url.Values) (tokenResult, error) {
	status, hdr, body, err := p.post(ctx, a, a.TokenURI, form)
	var res tokenResult
	if err == nil {
		res, err = parseTokenResponse(status, hdr.Get("Content-Type"), body, a, formSecrets(form)...)
	}
	if te := (*tokenError)(nil); errors.As(err, &te) && !te.Permanent {
		te.RetryAfter = retryAfter(hdr.Get("Retry-After"), time.Now())
	}
	return res, err
}

// exchangeCode trades a code for tokens, retrying network failures (a lost
// code means logging in again), but not an HTTP error, which would recur.
func (p *provider) exchangeCode(ctx context.Context, a *Account, code, verifier, redirectURI string) (tokenResult, error) {
	form := url.Values{
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {redirectURI},
		"grant_type":    {"authorization_code"},
	}
	for attempt := 0; ; attempt++ {
		res, err := p.tokenRequest(ctx, a, form)
		var te *tokenError
		if err == nil || attempt >= p.retries || !errors.As(err, &te) || !te.network || ctx.Err() != nil {
			return res, err
		}
		logDebug("token request for account '%s' failed (%s); retrying in %s", a.Name, te.Msg, p.retryDelay)
		if serr := p.pause(ctx); serr != nil {
			return tokenResult{}, &tokenError{network: true, cause: serr,
				Msg: fmt.Sprintf("gave up retrying the token request: %s", te.Msg)}
		}
	}
}

// pause waits retryDelay before a retry, ending early with ctx or stop.
func (p *provider) pause(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if p.stop != nil {
		defer context.AfterFunc(p.stop, cancel)()
	}
	return p.sleep(ctx, p.retryDelay)
}

// clientCredentials asks for an app-only token (RFC 6749 §4.4).
func (p *provider) clientCredentials(ctx context.Context, a *Account) (tokenResult, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(a.Scopes) > 0 {
		form.Set("scope", strings.Join(a.Scopes, " "))
	}
	return p.tokenRequest(ctx, a, form)
}

// refresh uses a refresh token once.
func (p *provider) refresh(ctx context.Context, a *Account, refreshToken string) (tokenResult, error) {
	return p.tokenRequest(ctx, a, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	})
}

// deviceAuth is an RFC 8628 device authorisation response.
type deviceAuth struct {
	DeviceCode              string
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string // "" when the provider sent none (or a bad one)
	ExpiresIn               time.Duration
	Interval                time.Duration // polling interval; 5 s when not given
}

// deviceAuthorize starts an RFC 8628 device authorisation.
func (p *provider) deviceAuthorize(ctx context.Context, a *Account) (deviceAuth, error) {
	if a.DeviceAuthURI == "" {
		return deviceAuth{}, &tokenError{Msg: fmt.Sprintf("account '%s' has no device_auth_uri", a.Name)}
	}
	form := url.Values{}
	if len(a.Scopes) > 0 {
		form.Set("scope", strings.Join(a.Scopes, " "))
	}
	status, hdr, body, err := p.post(ctx, a, a.DeviceAuthURI, form)
	if err != nil {
		return deviceAuth{}, err
	}
	return parseDeviceResponse(status, hdr.Get("Content-Type"), body, a)
}

// pollDevice asks once whether the user has approved a device request; "not
// yet" is a *tokenError with Code authorization_pending or slow_down.
func (p *provider) pollDevice(ctx context.Context, a *Account, deviceCode string) (tokenResult, error) {
	return p.tokenRequest(ctx, a, url.Values{
		"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {deviceCode},
	})
}

// revoke asks the provider to invalidate token (RFC 7009).
func (p *provider) revoke(ctx context.Context, a *Account, token, hint string) error {
	if a.RevokeURI == "" {
		return &tokenError{Msg: fmt.Sprintf("account '%s' has no revoke_uri", a.Name)}
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	status, hdr, body, err := p.post(ctx, a, a.RevokeURI, form)
	if err != nil {
		return err
	}
	ct := hdr.Get("Content-Type")
	// RFC 7009 says 200; some servers answer 204.
	if status >= 200 && status < 300 {
		return nil
	}
	fields, jerr := decodeObject(body)
	if te := responseFailure("revocation endpoint", status, ct, fields, jerr, body, secretList(a, nil, formSecrets(form))); te != nil {
		return te
	}
	return &tokenError{Status: status, Msg: fmt.Sprintf("revocation endpoint answered HTTP %d instead of 200", status)}
}

// formSecrets are the form's values that must never be quoted.
func formSecrets(form url.Values) []string {
	var s []string
	for _, k := range [...]string{"code", "code_verifier", "refresh_token", "device_code", "token", "client_secret"} {
		s = append(s, form[k]...)
	}
	return s
}

// secretList is everything to scrub from provider text.
func secretList(a *Account, fields map[string]json.RawMessage, extra []string) []string {
	s := append([]string{a.ClientSecret}, extra...)
	for _, k := range [...]string{"access_token", "refresh_token", "id_token", "device_code"} {
		if v, ok := stringField(fields, k); ok {
			s = append(s, v)
		}
	}
	return s
}

// parseTokenResponse turns a token endpoint answer into a token or a
// *tokenError, scrubbed of secrets, a.ClientSecret and any token in body.
func parseTokenResponse(status int, contentType string, body []byte, a *Account, secrets ...string) (tokenResult, error) {
	const what = "token endpoint"
	fields, jerr := decodeObject(body)
	if te := responseFailure(what, status, contentType, fields, jerr, body, secretList(a, fields, secrets)); te != nil {
		return tokenResult{}, te
	}
	// Not permanent: a proxy can answer 200 with junk, and if it is the
	// provider's own broken answer, retrying costs a request, not a login.
	bad := func(format string, args ...any) (tokenResult, error) {
		return tokenResult{}, &tokenError{Status: status,
			Msg: fmt.Sprintf("%s sent an unusable token response (HTTP %d): ", what, status) + fmt.Sprintf(format, args...)}
	}

	var res tokenResult
	at, err := optString(fields, "access_token")
	switch {
	case err != nil:
		return bad("access_token is not a string")
	case at == "":
		return bad("no access_token")
	case !vschar(at):
		return bad("access_token contains characters RFC 6749 forbids")
	}
	res.AccessToken = at

	tt, err := optString(fields, "token_type")
	switch {
	case err != nil:
		return bad("token_type is not a string")
	case tt == "":
		return bad("no token_type")
	case !strings.EqualFold(tt, "bearer"):
		return bad("token_type is %q, not \"bearer\"", clean(tt, 32))
	}

	rt, err := optString(fields, "refresh_token")
	switch {
	case err != nil:
		return bad("refresh_token is not a string")
	case rt != "" && !vschar(rt):
		return bad("refresh_token contains characters RFC 6749 forbids")
	}
	res.RefreshToken = rt

	res.ExpiresIn = a.RefreshAtLeast
	if raw, ok := fields["expires_in"]; ok && string(raw) != "null" {
		d, err := parseSeconds(raw)
		if err != nil {
			return bad("expires_in %s", err)
		}
		res.ExpiresIn = d
	}
	return res, nil
}

// parseDeviceResponse reads a device authorisation answer (RFC 8628 §3.2).
func parseDeviceResponse(status int, contentType string, body []byte, a *Account) (deviceAuth, error) {
	const what = "device authorization endpoint"
	fields, jerr := decodeObject(body)
	if te := responseFailure(what, status, contentType, fields, jerr, body, secretList(a, fields, nil)); te != nil {
		return deviceAuth{}, te
	}
	bad := func(format string, args ...any) (deviceAuth, error) {
		return deviceAuth{}, &tokenError{Status: status,
			Msg: fmt.Sprintf("%s sent an unusable response (HTTP %d): ", what, status) + fmt.Sprintf(format, args...)}
	}
	var d deviceAuth
	var err error
	if d.DeviceCode, err = optString(fields, "device_code"); err != nil || d.DeviceCode == "" {
		return bad("no device_code")
	}
	if d.UserCode, err = optString(fields, "user_code"); err != nil || d.UserCode == "" || !vschar(d.UserCode) || len(d.UserCode) > maxUserCode {
		return bad("no usable user_code")
	}
	// verification_url is the spelling of drafts that Google still sends.
	if d.VerificationURI, err = optString(fields, "verification_uri"); err != nil || d.VerificationURI == "" {
		if d.VerificationURI, err = optString(fields, "verification_url"); err != nil || d.VerificationURI == "" {
			return bad("no verification_uri")
		}
	}
	if err := checkShownURL(d.VerificationURI); err != nil {
		return bad("verification_uri %v", err)
	}
	if d.VerificationURIComplete, err = optString(fields, "verification_uri_complete"); err != nil {
		return bad("verification_uri_complete is not a string")
	}
	if c := d.VerificationURIComplete; c != "" {
		if err := checkShownURL(c); err != nil {
			return bad("verification_uri_complete %v", err)
		}
	}
	raw, ok := fields["expires_in"]
	if !ok || string(raw) == "null" {
		return bad("no expires_in")
	}
	if d.ExpiresIn, err = parseSeconds(raw); err != nil {
		return bad("expires_in %s", err)
	}
	if d.ExpiresIn == 0 {
		return bad("expires_in is 0")
	}
	d.Interval = defaultDeviceInterval
	if raw, ok := fields["interval"]; ok && string(raw) != "null" {
		iv, err := parseSeconds(raw)
		if err != nil {
			return bad("interval %s", err)
		}
		// 0 would make us hammer the provider; take the RFC default.
		if iv > 0 {
			d.Interval = iv
		}
	}
	return d, nil
}

// checkShownURL accepts a provider's URL that the user will see: printable
// ASCII (no terminal controls, no look-alikes), at most maxShownURL bytes,
// and checkURL's rule. Its error completes a sentence.
func checkShownURL(u string) error {
	if len(u) > maxShownURL {
		return fmt.Errorf("is longer than %d bytes", maxShownURL)
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= 0x20 || u[i] >= 0x7f {
			return errors.New("contains characters other than printable ASCII")
		}
	}
	return checkURL(u)
}

// responseFailure returns nil for a 2xx JSON object without `error`, else
// the *tokenError describing the answer of the endpoint what.
func responseFailure(what string, status int, contentType string, fields map[string]json.RawMessage, jerr error, body []byte, secrets []string) *tokenError {
	te := &tokenError{Status: status}
	if raw, ok := fields["error"]; ok && string(raw) != "null" {
		code, err := optString(fields, "error")
		if err != nil {
			// Not an RFC 6749 error object, so not the provider's verdict.
			te.Msg = fmt.Sprintf("%s returned a malformed error (HTTP %d)", what, status)
			return te
		}
		te.Permanent = permanent(status, code)
		te.Code = clean(redact(code, secrets), maxErrorCode)
		msg := fmt.Sprintf("%s returned error %q (HTTP %d)", what, te.Code, status)
		if desc, err := optString(fields, "error_description"); err == nil && desc != "" {
			msg += ": " + clean(redact(desc, secrets), maxErrorText)
		}
		if te.Code == "invalid_client" {
			msg += "; check client_id, client_secret and token_endpoint_auth_method"
		}
		te.Msg = msg
		return te
	}
	ctype := mediaType(contentType)
	switch {
	case status >= 300 && status < 400:
		te.Msg = fmt.Sprintf("%s redirected (HTTP %d); set its URL in the configuration to the final address", what, status)
	case status < 200 || status >= 300:
		if jerr == nil {
			te.Msg = fmt.Sprintf("%s returned HTTP %d", what, status)
		} else {
			te.Msg = fmt.Sprintf("%s returned HTTP %d (%s)", what, status, ctype)
		}
	case jerr != nil && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")):
		te.Msg = fmt.Sprintf("%s sent invalid or truncated JSON (HTTP %d, %s)", what, status, ctype)
	case jerr != nil:
		te.Msg = fmt.Sprintf("%s did not send a JSON object (HTTP %d, %s)", what, status, ctype)
	default:
		return nil
	}
	return te
}

// decodeObject parses body as one JSON object of raw, unchecked members.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	if m == nil { // the body was `null`
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// optString returns member k: "" if absent or null, an error if no string.
func optString(fields map[string]json.RawMessage, k string) (string, error) {
	raw, ok := fields[k]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

func stringField(fields map[string]json.RawMessage, k string) (string, bool) {
	s, err := optString(fields, k)
	return s, err == nil && s != ""
}

// parseSeconds reads seconds: any JSON number (fractions truncated, a
// negative meaning already expired) or a string of digits, clamped to
// maxExpiresIn (some servers send nanoseconds).
func parseSeconds(raw json.RawMessage) (time.Duration, error) {
	s := string(raw)
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil || s == "" || strings.TrimLeft(s, "0123456789") != "" {
			return 0, errors.New("is neither a number nor a string of digits")
		}
	} else if s == "" || s[0] != '-' && (s[0] < '0' || s[0] > '9') {
		// raw is valid JSON: what remains is a number.
		return 0, errors.New("is not a number")
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, errors.New("is not a number")
	case f <= 0:
		return 0, nil
	case f >= maxExpiresIn.Seconds():
		return maxExpiresIn, nil
	}
	return time.Duration(f) * time.Second, nil
}

// mediaType is a Content-Type's media type, cleaned for a message.
func mediaType(ct string) string {
	if ct == "" {
		return "no content type"
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		ct = mt
	}
	return clean(ct, 64)
}
