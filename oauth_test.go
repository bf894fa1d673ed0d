package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Secrets used throughout; every test that sees an error checks none of
// them leaks into it.
const (
	tSecret   = "cl!ent:SECRET %x"
	tRefresh  = "REFRESH-tok-0123456789"
	tAccess   = "ACCESS-tok-abcdefghij"
	tCode     = "AUTH-code-987654321"
	tVerifier = "VERIFIER-abcdefghijklmnopqrstuvwxyz0123456789"
	tDevice   = "DEVICE-code-5555555555"
)

var allSecrets = []string{tSecret, tRefresh, tAccess, tCode, tVerifier, tDevice}

func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range allSecrets {
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s)} {
			if strings.Contains(msg, form) {
				t.Fatalf("error message leaks secret %q: %s", s, msg)
			}
		}
	}
	if strings.ContainsAny(msg, "\r\n\t\x00") {
		t.Fatalf("error message is not one clean line: %q", msg)
	}
}

func testAccount(tokenURI string) *Account {
	return &Account{
		Name:           "acct",
		AuthURI:        "https://auth.example.com/authorize",
		TokenURI:       tokenURI,
		ClientID:       "my-client",
		ClientSecret:   tSecret,
		RedirectURI:    "http://localhost/",
		RefreshAtLeast: 90 * time.Minute,
	}
}

// testProvider is newProvider with tiny delays and a sleep that only counts.
func testProvider(sleeps *atomic.Int32) *provider {
	p := newProvider()
	p.timeout = 2 * time.Second
	p.retries = 3
	p.retryDelay = 7 * time.Millisecond
	p.sleep = func(ctx context.Context, d time.Duration) error {
		if sleeps != nil {
			sleeps.Add(1)
		}
		return ctx.Err()
	}
	return p
}

// seenRequest is what a fake provider saw.
type seenRequest struct {
	method, contentType, accept, auth string
	form                              url.Values
	rawBody                           string
}

// fakeServer records each seenRequest and answers with respond.
func fakeServer(t *testing.T, respond func(w http.ResponseWriter, r *seenRequest)) (*httptest.Server, func() []seenRequest) {
	t.Helper()
	var mu sync.Mutex
	var reqs []seenRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		rq := seenRequest{r.Method, r.Header.Get("Content-Type"), r.Header.Get("Accept"), r.Header.Get("Authorization"), form, string(b)}
		mu.Lock()
		reqs = append(reqs, rq)
		mu.Unlock()
		respond(w, &rq)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seenRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]seenRequest(nil), reqs...)
	}
}

func jsonReply(status int, body string) func(http.ResponseWriter, *seenRequest) {
	return func(w http.ResponseWriter, _ *seenRequest) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

const okBody = `{"access_token":"` + tAccess + `","token_type":"Bearer","expires_in":3599,"refresh_token":"NEW-refresh"}`

func TestAuthURLExactOrderAndEscaping(t *testing.T) {
	a := testAccount("https://token.example.com/")
	a.AuthURI = "https://auth.example.com/o/authorize?tenant=a%20b&x=1"
	a.ClientID = "id with space&amp"
	a.Scopes = []string{"https://mail.example.com/IMAP", "offline_access"}
	a.AuthURIFields = []KV{{"login_hint", "me+x@example.com"}, {"prompt", "consent"}, {"login_hint", "second"}}
	got := authURL(a, "http://localhost:8080/cb", "STATE_-1", "CHAL_-2")
	want := "https://auth.example.com/o/authorize?tenant=a%20b&x=1" +
		"&access_type=offline&code_challenge=CHAL_-2&code_challenge_method=S256" +
		"&client_id=id+with+space%26amp&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcb" +
		"&response_type=code&state=STATE_-1" +
		"&scope=https%3A%2F%2Fmail.example.com%2FIMAP+offline_access" +
		"&login_hint=me%2Bx%40example.com&prompt=consent&login_hint=second"
	if got != want {
		t.Fatalf("authURL:\n got %s\nwant %s", got, want)
	}
	if strings.Contains(got, "SECRET") || strings.Contains(got, url.QueryEscape(tSecret)) || strings.Contains(got, "client_secret") {
		t.Fatalf("client secret in URL: %s", got)
	}
	// The user's browser must see the same parameters, in order.
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if q := u.Query(); q.Get("client_id") != "id with space&amp" || len(q["login_hint"]) != 2 || q.Get("tenant") != "a b" {
		t.Fatalf("query does not round-trip: %v", q)
	}
}

func TestAuthURLWithoutQueryOrScopes(t *testing.T) {
	for _, base := range []string{"https://auth.example.com/authorize", "https://auth.example.com/authorize?"} {
		a := testAccount("")
		a.AuthURI = base
		got := authURL(a, "http://localhost/", "s", "c")
		want := "https://auth.example.com/authorize?access_type=offline&code_challenge=c&code_challenge_method=S256" +
			"&client_id=my-client&redirect_uri=http%3A%2F%2Flocalhost%2F&response_type=code&state=s"
		if got != want {
			t.Fatalf("authURL(%q):\n got %s\nwant %s", base, got, want)
		}
	}
}

func TestClientAuthentication(t *testing.T) {
	for _, tc := range []struct {
		name, secret, method string
	}{
		{"no secret", "", ""},
		{"no secret basic", "", "client_secret_basic"},
		{"post default", tSecret, ""},
		{"post explicit", tSecret, "client_secret_post"},
		{"basic", tSecret, "client_secret_basic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, reqs := fakeServer(t, jsonReply(200, okBody))
			a := testAccount(srv.URL)
			a.ClientID = "id:with %special"
			a.ClientSecret = tc.secret
			a.TokenEndpointAuthMethod = tc.method
			if _, err := testProvider(nil).refresh(context.Background(), a, tRefresh); err != nil {
				t.Fatal(err)
			}
			r := reqs()[0]
			if r.method != "POST" || r.contentType != "application/x-www-form-urlencoded" || r.accept != "application/json" {
				t.Fatalf("seenRequest %s, Content-Type %q, Accept %q", r.method, r.contentType, r.accept)
			}
			if r.form.Get("client_id") != "id:with %special" {
				t.Fatalf("client_id in body = %q", r.form.Get("client_id"))
			}
			basic := tc.secret != "" && tc.method == "client_secret_basic"
			post := tc.secret != "" && !basic
			if _, ok := r.form["client_secret"]; ok != post {
				t.Fatalf("client_secret in body: %v, want %v", ok, post)
			}
			if post && r.form.Get("client_secret") != tSecret {
				t.Fatalf("client_secret = %q", r.form.Get("client_secret"))
			}
			if (r.auth != "") != basic {
				t.Fatalf("Authorization header %q, want basic=%v", r.auth, basic)
			}
			if basic {
				raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.auth, "Basic "))
				if err != nil {
					t.Fatal(err)
				}
				// RFC 6749 §2.3.1: each part form-urlencoded, then joined by ':'.
				want := "id%3Awith+%25special:cl%21ent%3ASECRET+%25x"
				if string(raw) != want {
					t.Fatalf("basic credentials %q, want %q", raw, want)
				}
				id, _ := url.QueryUnescape(strings.SplitN(string(raw), ":", 2)[0])
				sec, _ := url.QueryUnescape(strings.SplitN(string(raw), ":", 2)[1])
				if id != a.ClientID || sec != tSecret {
					t.Fatalf("basic credentials decode to %q:%q", id, sec)
				}
			}
		})
	}
}

func TestPostDoesNotModifyFormOrFollowRedirects(t *testing.T) {
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, okBody)
	}))
	defer elsewhere.Close()
	for _, code := range []int{301, 302, 307, 308} {
		srv, _ := fakeServer(t, func(w http.ResponseWriter, _ *seenRequest) {
			w.Header().Set("Location", elsewhere.URL)
			w.WriteHeader(code)
		})
		form := url.Values{"refresh_token": {tRefresh}, "grant_type": {"refresh_token"}}
		_, err := testProvider(nil).tokenRequest(context.Background(), testAccount(srv.URL), form)
		var te *tokenError
		if !errors.As(err, &te) || te.Permanent || te.Status != code || !strings.Contains(te.Msg, "redirected") {
			t.Fatalf("HTTP %d: err = %#v", code, err)
		}
		assertNoSecret(t, err)
		if len(form) != 2 {
			t.Fatalf("post modified the caller's form: %v", form)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("redirect target received %d requests; secrets were replayed", hits.Load())
	}
}

func TestRefreshFormAndRotation(t *testing.T) {
	srv, reqs := fakeServer(t, jsonReply(200, okBody))
	res, err := testProvider(nil).refresh(context.Background(), testAccount(srv.URL), tRefresh)
	if err != nil {
		t.Fatal(err)
	}
	if res.AccessToken != tAccess || res.RefreshToken != "NEW-refresh" || res.ExpiresIn != 3599*time.Second {
		t.Fatalf("result %+v", res)
	}
	f := reqs()[0].form
	want := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tRefresh}, "client_id": {"my-client"}, "client_secret": {tSecret}}
	if fmt.Sprint(f) != fmt.Sprint(want) {
		t.Fatalf("refresh form %v, want %v", f, want)
	}

	srv2, _ := fakeServer(t, jsonReply(200, `{"access_token":"a2","token_type":"bearer"}`))
	res, err = testProvider(nil).refresh(context.Background(), testAccount(srv2.URL), tRefresh)
	if err != nil || res.RefreshToken != "" || res.ExpiresIn != 90*time.Minute {
		t.Fatalf("absent refresh_token/expires_in: %+v, %v", res, err)
	}
}

func TestExchangeCodeForm(t *testing.T) {
	srv, reqs := fakeServer(t, jsonReply(200, okBody))
	a := testAccount(srv.URL)
	a.ClientSecret = ""
	if _, err := testProvider(nil).exchangeCode(context.Background(), a, tCode, tVerifier, "http://localhost:1234/"); err != nil {
		t.Fatal(err)
	}
	f := reqs()[0].form
	want := url.Values{"code": {tCode}, "code_verifier": {tVerifier}, "redirect_uri": {"http://localhost:1234/"},
		"grant_type": {"authorization_code"}, "client_id": {"my-client"}}
	if fmt.Sprint(f) != fmt.Sprint(want) {
		t.Fatalf("exchange form %v, want %v", f, want)
	}
}

func TestParseTokenResponse(t *testing.T) {
	const year = 365 * 24 * time.Hour
	ok := func(extra string) string {
		return `{"access_token":"AT","token_type":"Bearer"` + extra + `}`
	}
	for _, tc := range []struct {
		name     string
		status   int
		ct, body string
		expires  time.Duration // checked on success
		refresh  string
		fail     bool
		perm     bool // the provider's verdict: the grant is over
		code     string
		msgHas   string
	}{
		{name: "number", status: 200, body: ok(`,"expires_in":3600`), expires: time.Hour},
		{name: "digit string", status: 200, body: ok(`,"expires_in":"3600"`), expires: time.Hour},
		{name: "absent", status: 200, body: ok(``), expires: 90 * time.Minute},
		{name: "null", status: 200, body: ok(`,"expires_in":null`), expires: 90 * time.Minute},
		{name: "zero", status: 200, body: ok(`,"expires_in":0`), expires: 0},
		{name: "nanoseconds", status: 200, body: ok(`,"expires_in":3600000000000`), expires: year},
		{name: "beyond int64", status: 200, body: ok(`,"expires_in":"99999999999999999999999999"`), expires: year},
		{name: "exactly a year", status: 200, body: ok(`,"expires_in":31536000`), expires: year},
		{name: "negative: already expired", status: 200, body: ok(`,"expires_in":-5`), expires: 0},
		{name: "fraction truncated", status: 200, body: ok(`,"expires_in":3599.9`), expires: 3599 * time.Second},
		{name: "whole float", status: 200, body: ok(`,"expires_in":3599.0`), expires: 3599 * time.Second},
		{name: "exponent", status: 200, body: ok(`,"expires_in":3.6e3`), expires: time.Hour},
		{name: "upper-case exponent", status: 200, body: ok(`,"expires_in":36E2`), expires: time.Hour},
		{name: "huge exponent clamped", status: 200, body: ok(`,"expires_in":1e400`), expires: year},
		{name: "tiny exponent", status: 200, body: ok(`,"expires_in":1e-400`), expires: 0},
		{name: "negative exponent", status: 200, body: ok(`,"expires_in":-1e400`), expires: 0},
		{name: "object", status: 200, body: ok(`,"expires_in":{}`), fail: true, msgHas: "expires_in"},
		{name: "float string", status: 200, body: ok(`,"expires_in":"3600.0"`), fail: true, msgHas: "expires_in"},
		{name: "garbage string", status: 200, body: ok(`,"expires_in":"soon"`), fail: true, msgHas: "expires_in"},
		{name: "empty string", status: 200, body: ok(`,"expires_in":""`), fail: true, msgHas: "expires_in"},
		{name: "bool", status: 200, body: ok(`,"expires_in":true`), fail: true, msgHas: "expires_in"},
		{name: "bearer lower", status: 200, body: `{"access_token":"AT","token_type":"bearer"}`, expires: 90 * time.Minute},
		{name: "bearer upper", status: 201, body: `{"access_token":"AT","token_type":"BEARER"}`, expires: 90 * time.Minute},
		{name: "wrong token_type", status: 200, body: `{"access_token":"AT","token_type":"mac"}`, fail: true, msgHas: `"mac"`},
		{name: "no token_type", status: 200, body: `{"access_token":"AT"}`, fail: true, msgHas: "token_type"},
		{name: "no access_token", status: 200, body: `{"token_type":"bearer"}`, fail: true, msgHas: "access_token"},
		{name: "empty access_token", status: 200, body: `{"access_token":"","token_type":"bearer"}`, fail: true, msgHas: "access_token"},
		{name: "numeric access_token", status: 200, body: `{"access_token":5,"token_type":"bearer"}`, fail: true, msgHas: "access_token"},
		{name: "newline in token", status: 200, body: `{"access_token":"A\nB","token_type":"bearer"}`, fail: true, msgHas: "access_token"},
		{name: "refresh rotated", status: 200, body: ok(`,"refresh_token":"RT2"`), expires: 90 * time.Minute, refresh: "RT2"},
		{name: "refresh null", status: 200, body: ok(`,"refresh_token":null`), expires: 90 * time.Minute},
		{name: "refresh not string", status: 200, body: ok(`,"refresh_token":{}`), fail: true, msgHas: "refresh_token"},
		{name: "error with 200", status: 200, body: `{"error":"invalid_grant","error_description":"expired"}`, fail: true, code: "invalid_grant", msgHas: "expired"},
		{name: "error beside token", status: 200, body: ok(`,"error":"server_error"`), fail: true, code: "server_error"},
		{name: "invalid_grant 400", status: 400, body: `{"error":"invalid_grant","error_description":"AADSTS70008: The refresh token has expired."}`, fail: true, perm: true, code: "invalid_grant", msgHas: "AADSTS70008"},
		{name: "invalid_client", status: 401, body: `{"error":"invalid_client"}`, fail: true, perm: true, code: "invalid_client", msgHas: "client_secret"},
		{name: "error object", status: 400, body: `{"error":{"code":1}}`, fail: true, msgHas: "malformed error"},
		{name: "503 json error", status: 503, body: `{"error":"temporarily_unavailable"}`, fail: true, code: "temporarily_unavailable"},
		{name: "json 401 no error", status: 401, body: `{}`, fail: true, msgHas: "HTTP 401"},
		{name: "html 200", status: 200, ct: "text/html; charset=utf-8", body: "<html>login</html>", fail: true, msgHas: "text/html"},
		{name: "html 500", status: 500, ct: "text/html", body: "<html>oops</html>", fail: true, msgHas: "HTTP 500 (text/html)"},
		{name: "html 403", status: 403, ct: "text/html", body: "<html>no</html>", fail: true, msgHas: "HTTP 403"},
		{name: "truncated json", status: 200, body: `{"access_token":"AT","token_ty`, fail: true, msgHas: "truncated"},
		{name: "json array", status: 200, body: `[1,2]`, fail: true, msgHas: "JSON object"},
		{name: "json null", status: 200, body: `null`, fail: true, msgHas: "JSON object"},
		{name: "empty body", status: 200, body: ``, fail: true, msgHas: "no content type"},
		{name: "501", status: 501, body: `{}`, fail: true},
		{name: "404", status: 404, body: `{}`, fail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := tc.ct
			if ct == "" && tc.body != "" {
				ct = "application/json"
			}
			res, err := parseTokenResponse(tc.status, ct, []byte(tc.body), testAccount(""))
			if !tc.fail {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if res.AccessToken != "AT" || res.ExpiresIn != tc.expires || res.RefreshToken != tc.refresh {
					t.Fatalf("result %+v, want expires %v refresh %q", res, tc.expires, tc.refresh)
				}
				return
			}
			var te *tokenError
			if !errors.As(err, &te) {
				t.Fatalf("err = %#v, want *tokenError", err)
			}
			if te.Permanent != tc.perm || te.Code != tc.code || te.Status != tc.status {
				t.Fatalf("got permanent=%v code=%q status=%d, want %v %q %d (%s)", te.Permanent, te.Code, te.Status, tc.perm, tc.code, tc.status, te.Msg)
			}
			if !strings.Contains(te.Error(), tc.msgHas) {
				t.Fatalf("message %q lacks %q", te.Error(), tc.msgHas)
			}
			if strings.Contains(te.Error(), "AT\"") || strings.ContainsAny(te.Error(), "\n\r") {
				t.Fatalf("message %q quotes the body", te.Error())
			}
		})
	}
}

func TestStatusClassificationOverHTTP(t *testing.T) {
	for _, status := range []int{408, 429, 500, 502, 503, 504, 400, 401, 403, 404, 405, 501, 505} {
		srv, reqs := fakeServer(t, func(w http.ResponseWriter, _ *seenRequest) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(status)
			io.WriteString(w, "nope")
		})
		var sleeps atomic.Int32
		p := testProvider(&sleeps)
		_, err := p.exchangeCode(context.Background(), testAccount(srv.URL), tCode, tVerifier, "http://localhost/")
		var te *tokenError
		if !errors.As(err, &te) {
			t.Fatalf("HTTP %d: err = %v", status, err)
		}
		// A status alone, without a JSON error, is never the verdict.
		if te.Permanent || te.Status != status {
			t.Errorf("HTTP %d: permanent=%v status=%d, want transient", status, te.Permanent, te.Status)
		}
		if n := len(reqs()); n != 1 || sleeps.Load() != 0 {
			t.Errorf("HTTP %d: %d attempts, %d sleeps; an HTTP status must not be retried", status, n, sleeps.Load())
		}
		assertNoSecret(t, err)
	}
}

func TestBodyCap(t *testing.T) {
	for _, tc := range []struct {
		size   int
		status int
		fail   bool
	}{
		{maxResponseBody, 200, false},
		{maxResponseBody + 1, 200, true},
		{maxResponseBody + 1, 503, true},
		{5 * maxResponseBody, 200, true},
	} {
		srv, _ := fakeServer(t, func(w http.ResponseWriter, _ *seenRequest) {
			w.WriteHeader(tc.status)
			w.Write([]byte(strings.Repeat(" ", tc.size)))
		})
		status, _, body, err := testProvider(nil).post(context.Background(), testAccount(srv.URL), srv.URL, url.Values{})
		if !tc.fail {
			if err != nil || status != 200 || len(body) != tc.size {
				t.Fatalf("%d bytes: status %d, %d bytes, %v", tc.size, status, len(body), err)
			}
			continue
		}
		var te *tokenError
		if !errors.As(err, &te) || te.Permanent || !strings.Contains(te.Msg, "1 MiB") {
			t.Fatalf("%d bytes, HTTP %d: err = %#v", tc.size, tc.status, err)
		}
	}
}

// hangingServer runs start and then stalls until the client gives up or
// the test ends.
func hangingServer(t *testing.T, start func(http.ResponseWriter)) *httptest.Server {
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client hang-up only once the body is consumed.
		io.Copy(io.Discard, r.Body)
		start(w)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return srv
}

func TestHangingServerIsTransient(t *testing.T) {
	srv := hangingServer(t, func(w http.ResponseWriter) {})
	p := testProvider(nil)
	p.timeout = 50 * time.Millisecond
	_, err := p.refresh(context.Background(), testAccount(srv.URL), tRefresh)
	var te *tokenError
	if !errors.As(err, &te) || te.Permanent || !strings.Contains(te.Msg, "did not answer within 50ms") {
		t.Fatalf("err = %#v", err)
	}
	assertNoSecret(t, err)
}

func TestHangingBodyIsTransient(t *testing.T) {
	srv := hangingServer(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":`)
		w.(http.Flusher).Flush()
	})
	p := testProvider(nil)
	p.timeout = 50 * time.Millisecond
	_, err := p.refresh(context.Background(), testAccount(srv.URL), tRefresh)
	var te *tokenError
	if !errors.As(err, &te) || te.Permanent || te.Status != 200 {
		t.Fatalf("err = %#v", err)
	}
}

// closedPort returns an address on which nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/token"
}

func TestExchangeCodeRetriesConnectionRefused(t *testing.T) {
	var sleeps atomic.Int32
	p := testProvider(&sleeps)
	var delays []time.Duration
	p.sleep = func(ctx context.Context, d time.Duration) error {
		sleeps.Add(1)
		delays = append(delays, d)
		return nil
	}
	tokenURI := closedPort(t)
	_, err := p.exchangeCode(context.Background(), testAccount(tokenURI), tCode, tVerifier, "http://localhost/")
	var te *tokenError
	if !errors.As(err, &te) || te.Permanent || te.Status != 0 || !strings.Contains(te.Msg, "cannot reach 127.0.0.1") {
		t.Fatalf("err = %#v", err)
	}
	// The address once: "cannot reach 127.0.0.1:N: connect: connection
	// refused", not again in "dial tcp 127.0.0.1:N: ...".
	if addr := strings.TrimSuffix(strings.TrimPrefix(tokenURI, "http://"), "/token"); strings.Count(te.Msg, addr) != 1 {
		t.Errorf("the message names %s %d times: %q", addr, strings.Count(te.Msg, addr), te.Msg)
	}
	if sleeps.Load() != int32(p.retries) {
		t.Fatalf("%d retries, want %d", sleeps.Load(), p.retries)
	}
	for _, d := range delays {
		if d != p.retryDelay {
			t.Fatalf("retry delay %v, want %v", d, p.retryDelay)
		}
	}
	assertNoSecret(t, err)

	// A refresh is tried once: its caller reschedules it.
	sleeps.Store(0)
	if _, err := p.refresh(context.Background(), testAccount(closedPort(t)), tRefresh); err == nil || sleeps.Load() != 0 {
		t.Fatalf("refresh: err %v after %d sleeps", err, sleeps.Load())
	}
}

// TestExchangeCodeNoRetryAfterStop: once the server begins to stop, the
// pause before a retry of the code exchange ends and no retry is sent.
func TestExchangeCodeNoRetryAfterStop(t *testing.T) {
	srv, calls := dropFirst(t, 100)
	p := testProvider(nil)
	stop, stopping := context.WithCancel(context.Background())
	p.stop = stop
	p.sleep = func(ctx context.Context, d time.Duration) error {
		stopping() // shutdown begins during the first pause
		return sleepCtx(ctx, time.Minute)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.exchangeCode(context.Background(), testAccount(srv.URL), tCode, tVerifier, "http://localhost/")
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want the pause cancelled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the pause before a retry went on after the server began to stop")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
}

// dropFirst returns a server that closes the first n connections without a
// response and then answers okBody.
func dropFirst(t *testing.T, n int32) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= n {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		io.WriteString(w, okBody)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestExchangeCodeRecoversAfterNetworkFailures(t *testing.T) {
	srv, calls := dropFirst(t, 2)
	var sleeps atomic.Int32
	res, err := testProvider(&sleeps).exchangeCode(context.Background(), testAccount(srv.URL), tCode, tVerifier, "http://localhost/")
	if err != nil || res.AccessToken != tAccess {
		t.Fatalf("res %+v, err %v", res, err)
	}
	if calls.Load() != 3 || sleeps.Load() != 2 {
		t.Fatalf("%d attempts, %d sleeps; want 3, 2", calls.Load(), sleeps.Load())
	}

	srv, calls = dropFirst(t, 100)
	sleeps.Store(0)
	p := testProvider(&sleeps)
	_, err = p.exchangeCode(context.Background(), testAccount(srv.URL), tCode, tVerifier, "http://localhost/")
	var te *tokenError
	if !errors.As(err, &te) || te.Permanent {
		t.Fatalf("err = %#v", err)
	}
	if calls.Load() != int32(p.retries)+1 || sleeps.Load() != int32(p.retries) {
		t.Fatalf("%d attempts, %d sleeps; want %d, %d", calls.Load(), sleeps.Load(), p.retries+1, p.retries)
	}
}

func TestExchangeCodeStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var sleeps atomic.Int32
	p := testProvider(nil)
	p.sleep = func(ctx context.Context, d time.Duration) error {
		sleeps.Add(1)
		cancel()
		return sleepCtx(ctx, time.Hour)
	}
	_, err := p.exchangeCode(ctx, testAccount(closedPort(t)), tCode, tVerifier, "http://localhost/")
	if !errors.Is(err, context.Canceled) || sleeps.Load() != 1 {
		t.Fatalf("err %v after %d sleeps", err, sleeps.Load())
	}
	assertNoSecret(t, err)

	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleepCtx on a cancelled context: %v", err)
	}
	if err := sleepCtx(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("sleepCtx: %v", err)
	}
}

// TestErrorsNeverEchoRequest covers providers that quote the seenRequest back:
// whole body in an HTML page, in error_description (raw and encoded), and in
// the error code.
func TestErrorsNeverEchoRequest(t *testing.T) {
	replies := map[string]func(http.ResponseWriter, *seenRequest){
		"html 500": func(w http.ResponseWriter, r *seenRequest) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(500)
			fmt.Fprintf(w, "<html><pre>%s\n%s\n%v</pre></html>", r.rawBody, r.auth, r.form)
		},
		"json raw": func(w http.ResponseWriter, r *seenRequest) {
			w.WriteHeader(400)
			var vals []string
			for _, v := range r.form {
				vals = append(vals, v...)
			}
			b, _ := json.Marshal(map[string]string{"error": "invalid_request",
				"error_description": "bad seenRequest " + strings.Join(vals, " ") + " auth " + r.auth})
			w.Write(b)
		},
		"json encoded": func(w http.ResponseWriter, r *seenRequest) {
			w.WriteHeader(400)
			b, _ := json.Marshal(map[string]string{"error": "invalid_request", "error_description": "body was " + r.rawBody})
			w.Write(b)
		},
		"json code": func(w http.ResponseWriter, r *seenRequest) {
			w.WriteHeader(400)
			b, _ := json.Marshal(map[string]string{"error": r.form.Get("code") + r.form.Get("refresh_token")})
			w.Write(b)
		},
		"json 200 with token": func(w http.ResponseWriter, r *seenRequest) {
			b, _ := json.Marshal(map[string]string{"access_token": tAccess, "error": "odd",
				"error_description": "issued " + tAccess})
			w.Write(b)
		},
	}
	for name, reply := range replies {
		for _, method := range []string{"client_secret_post", "client_secret_basic"} {
			srv, _ := fakeServer(t, reply)
			a := testAccount(srv.URL)
			a.TokenEndpointAuthMethod = method
			a.RevokeURI = srv.URL
			a.DeviceAuthURI = srv.URL
			p := testProvider(nil)
			ctx := context.Background()
			_, err := p.exchangeCode(ctx, a, tCode, tVerifier, "http://localhost/")
			if err == nil {
				t.Fatalf("%s/%s: exchange succeeded", name, method)
			}
			assertNoSecret(t, err)
			_, err = p.refresh(ctx, a, tRefresh)
			assertNoSecret(t, err)
			_, err = p.pollDevice(ctx, a, tDevice)
			assertNoSecret(t, err)
			err = p.revoke(ctx, a, tAccess, "access_token")
			if err == nil && name != "json 200 with token" { // RFC 7009: 200 means revoked
				t.Fatalf("%s/%s: revoke succeeded", name, method)
			}
			assertNoSecret(t, err)
		}
	}
}

func TestErrorDescriptionIsOneShortLine(t *testing.T) {
	desc := "line one\r\nline two\ttab\x00\x1b[31m" + strings.Repeat("é", 500)
	b, _ := json.Marshal(map[string]string{"error": "invalid\ngrant", "error_description": desc})
	_, err := parseTokenResponse(400, "application/json", b, testAccount(""))
	var te *tokenError
	if !errors.As(err, &te) {
		t.Fatal(err)
	}
	msg := te.Error()
	if strings.ContainsAny(msg, "\r\n\t\x00\x1b") || len(msg) > 100+maxErrorText+maxErrorCode {
		t.Fatalf("message not cleaned (%d bytes): %q", len(msg), msg)
	}
	if !strings.Contains(msg, "line one line two tab") || !strings.HasSuffix(msg, "…") || te.Code != "invalid grant" {
		t.Fatalf("message %q, code %q", msg, te.Code)
	}
}

func TestDeviceAuthorize(t *testing.T) {
	const year = 365 * 24 * time.Hour
	for _, tc := range []struct {
		name, body string
		want       deviceAuth
		errHas     string
	}{
		{name: "rfc", body: `{"device_code":"DC","user_code":"WDJB-MJHT","verification_uri":"https://example.com/device",
			"verification_uri_complete":"https://example.com/device?user_code=WDJB-MJHT","expires_in":1800,"interval":7}`,
			want: deviceAuth{"DC", "WDJB-MJHT", "https://example.com/device", "https://example.com/device?user_code=WDJB-MJHT", 30 * time.Minute, 7 * time.Second}},
		{name: "google spelling, defaults", body: `{"device_code":"DC","user_code":"U","verification_url":"https://www.google.com/device","expires_in":"1800"}`,
			want: deviceAuth{"DC", "U", "https://www.google.com/device", "", 30 * time.Minute, 5 * time.Second}},
		{name: "interval zero, huge expiry", body: `{"device_code":"DC","user_code":"U","verification_uri":"https://e/d","expires_in":9999999999999,"interval":0}`,
			want: deviceAuth{"DC", "U", "https://e/d", "", year, 5 * time.Second}},
		{name: "negative interval", body: `{"device_code":"DC","user_code":"U","verification_uri":"https://e/d","expires_in":5.5,"interval":-1}`,
			want: deviceAuth{"DC", "U", "https://e/d", "", 5 * time.Second, 5 * time.Second}},
		{name: "bad complete", body: `{"device_code":"DC","user_code":"U","verification_uri":"https://e/d","verification_uri_complete":"javascript:x","expires_in":5}`, errHas: "verification_uri_complete"},
		{name: "CSI in verification_uri", body: `{"device_code":"DC","user_code":"U","verification_uri":"https://e/d\u009b2J","expires_in":5}`, errHas: "verification_uri contains characters other than printable ASCII"},
		{name: "bidi override in complete", body: `{"device_code":"DC","user_code":"U","verification_uri":"https://e/d","verification_uri_complete":"https://e/d?\u202ecode","expires_in":5}`, errHas: "verification_uri_complete contains"},
		{name: "space in verification_uri", body: `{"device_code":"DC","user_code":"U","verification_uri":"https://e/d x","expires_in":5}`, errHas: "printable ASCII"},
		{name: "huge verification_uri", body: `{"device_code":"DC","user_code":"U","verification_uri":"https://e/` + strings.Repeat("a", 200<<10) + `","expires_in":5}`, errHas: "verification_uri is longer than 2048 bytes"},
		{name: "huge user_code", body: `{"device_code":"DC","user_code":"` + strings.Repeat("U", 65) + `","verification_uri":"https://e/d","expires_in":5}`, errHas: "user_code"},
		{name: "no device_code", body: `{"user_code":"U","verification_uri":"https://e/d","expires_in":5}`, errHas: "device_code"},
		{name: "no user_code", body: `{"device_code":"DC","verification_uri":"https://e/d","expires_in":5}`, errHas: "user_code"},
		{name: "no verification_uri", body: `{"device_code":"DC","user_code":"U","expires_in":5}`, errHas: "verification_uri"},
		{name: "bad verification_uri", body: `{"device_code":"DC","user_code":"U","verification_uri":"file:///etc","expires_in":5}`, errHas: "verification_uri"},
		{name: "no expires_in", body: `{"device_code":"DC","user_code":"U","verification_uri":"https://e/d"}`, errHas: "expires_in"},
		{name: "bad expires_in", body: `{"device_code":"DC","user_code":"U","verification_uri":"https://e/d","expires_in":"x"}`, errHas: "expires_in"},
		{name: "bad interval", body: `{"device_code":"DC","user_code":"U","verification_uri":"https://e/d","expires_in":5,"interval":"x"}`, errHas: "interval"},
		{name: "oauth error", body: `{"error":"invalid_scope","error_description":"nope"}`, errHas: `"invalid_scope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status := 200
			if tc.name == "oauth error" {
				status = 400
			}
			srv, reqs := fakeServer(t, jsonReply(status, tc.body))
			a := testAccount("")
			a.AuthURI = ""
			a.DeviceAuthURI = srv.URL
			a.Scopes = []string{"a", "b c"}
			a.TokenEndpointAuthMethod = "client_secret_basic"
			got, err := testProvider(nil).deviceAuthorize(context.Background(), a)
			r := reqs()[0]
			if r.form.Get("scope") != "a b c" || r.form.Get("client_id") != "my-client" || r.auth == "" || r.form.Has("client_secret") {
				t.Fatalf("seenRequest form %v auth %q", r.form, r.auth)
			}
			if tc.errHas != "" {
				var te *tokenError
				if !errors.As(err, &te) || !strings.Contains(te.Msg, tc.errHas) {
					t.Fatalf("err = %v, want mention of %q", err, tc.errHas)
				}
				assertNoSecret(t, err)
				if strings.Contains(err.Error(), "DC") {
					t.Fatalf("device code in error: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}

	a := testAccount("")
	if _, err := testProvider(nil).deviceAuthorize(context.Background(), a); err == nil || !strings.Contains(err.Error(), "device_auth_uri") {
		t.Fatalf("no device_auth_uri: %v", err)
	}
}

func TestPollDevice(t *testing.T) {
	var n atomic.Int32
	srv, reqs := fakeServer(t, func(w http.ResponseWriter, r *seenRequest) {
		switch n.Add(1) {
		case 1:
			jsonReply(400, `{"error":"authorization_pending"}`)(w, r)
		case 2:
			jsonReply(400, `{"error":"slow_down"}`)(w, r)
		default:
			jsonReply(200, okBody)(w, r)
		}
	})
	a := testAccount(srv.URL)
	a.ClientSecret = ""
	p := testProvider(nil)
	for _, code := range []string{"authorization_pending", "slow_down"} {
		_, err := p.pollDevice(context.Background(), a, tDevice)
		var te *tokenError
		if !errors.As(err, &te) || te.Code != code {
			t.Fatalf("err = %#v, want code %s", err, code)
		}
	}
	res, err := p.pollDevice(context.Background(), a, tDevice)
	if err != nil || res.AccessToken != tAccess {
		t.Fatalf("res %+v err %v", res, err)
	}
	want := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {tDevice}, "client_id": {"my-client"}}
	if f := reqs()[2].form; fmt.Sprint(f) != fmt.Sprint(want) {
		t.Fatalf("poll form %v, want %v", f, want)
	}
}

func TestRevoke(t *testing.T) {
	var status atomic.Int32
	srv, reqs := fakeServer(t, func(w http.ResponseWriter, r *seenRequest) {
		switch s := int(status.Load()); s {
		case 400:
			jsonReply(400, `{"error":"unsupported_token_type","error_description":"cannot revoke `+r.form.Get("token")+`"}`)(w, r)
		default:
			w.WriteHeader(s)
		}
	})
	a := testAccount("")
	a.RevokeURI = srv.URL
	p := testProvider(nil)

	status.Store(200)
	if err := p.revoke(context.Background(), a, tRefresh, "refresh_token"); err != nil {
		t.Fatal(err)
	}
	want := url.Values{"token": {tRefresh}, "token_type_hint": {"refresh_token"}, "client_id": {"my-client"}, "client_secret": {tSecret}}
	if f := reqs()[0].form; fmt.Sprint(f) != fmt.Sprint(want) {
		t.Fatalf("revoke form %v, want %v", f, want)
	}
	if err := p.revoke(context.Background(), a, tAccess, ""); err != nil || reqs()[1].form.Has("token_type_hint") {
		t.Fatalf("revoke without hint: %v, form %v", err, reqs()[1].form)
	}

	for _, tc := range []struct {
		status int
		perm   bool
		code   string
	}{{400, true, "unsupported_token_type"}, {503, false, ""}, {401, false, ""}, {302, false, ""}} {
		status.Store(int32(tc.status))
		err := p.revoke(context.Background(), a, tAccess, "access_token")
		var te *tokenError
		if !errors.As(err, &te) || te.Permanent != tc.perm || te.Code != tc.code || te.Status != tc.status {
			t.Fatalf("HTTP %d: err = %#v", tc.status, err)
		}
		assertNoSecret(t, err)
	}

	// Some servers answer 204 No Content; the token is revoked all the same.
	status.Store(204)
	if err := p.revoke(context.Background(), a, tAccess, "access_token"); err != nil {
		t.Fatalf("HTTP 204: %v", err)
	}

	a.RevokeURI = ""
	if err := p.revoke(context.Background(), a, tAccess, ""); err == nil || !strings.Contains(err.Error(), "revoke_uri") {
		t.Fatalf("no revoke_uri: %v", err)
	}
}

// Every provider request uses a connection of its own: a pooled one kept
// across a suspend could be long dead at the provider's end, and a POST
// that fails on it is not retried.
func TestEveryRequestOnAFreshConnection(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, okBody)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	p := newProvider()
	for i := 0; i < 3; i++ {
		if _, err := p.refresh(context.Background(), testAccount(srv.URL), tRefresh); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 refreshes used %d connections, want 3", n)
	}
}

func TestNewProviderDefaults(t *testing.T) {
	p := newProvider()
	if p.timeout != 30*time.Second || p.retries != 10 || p.retryDelay != 6*time.Second || p.sleep == nil {
		t.Fatalf("defaults: timeout %v retries %d delay %v", p.timeout, p.retries, p.retryDelay)
	}
	tr, ok := p.client.Transport.(*http.Transport)
	if !ok || tr == http.DefaultTransport || tr.Proxy == nil || tr.TLSHandshakeTimeout == 0 {
		t.Fatalf("transport %#v", p.client.Transport)
	}
	if p.client.CheckRedirect == nil {
		t.Fatal("client follows redirects")
	}
}

func TestBadEndpointURL(t *testing.T) {
	for _, u := range []string{"", "ftp://x/", "::"} {
		_, err := testProvider(nil).refresh(context.Background(), testAccount(u), tRefresh)
		var te *tokenError
		if !errors.As(err, &te) || !te.Permanent {
			t.Fatalf("token_uri %q: err = %#v", u, err)
		}
		assertNoSecret(t, err)
	}
}

// FuzzTokenResponse checks that no provider answer can crash the parser or
// make it produce an unusable token or an unsafe message.
func FuzzTokenResponse(f *testing.F) {
	f.Add(200, "application/json", []byte(okBody))
	f.Add(200, "application/json", []byte(`{"access_token":"a","token_type":"bearer","expires_in":"99999999999999999999"}`))
	f.Add(400, "application/json", []byte(`{"error":"invalid_grant","error_description":"FUZZ-SECRET-value"}`))
	f.Add(503, "text/html; charset=utf-8", []byte("<html>busy</html>"))
	f.Add(200, "", []byte(`{"access_token":"a","token_type":"Bearer","expires_in":-1}`))
	f.Add(302, "text/plain", []byte{})
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		a := testAccount("")
		a.ClientSecret = "FUZZ-SECRET-value"
		res, err := parseTokenResponse(status, contentType, body, a, "FUZZ-REFRESH-value")
		if err == nil {
			if res.AccessToken == "" || !vschar(res.AccessToken) || !vschar(res.RefreshToken) ||
				res.ExpiresIn < 0 || res.ExpiresIn > maxExpiresIn || status < 200 || status > 299 {
				t.Fatalf("accepted unusable response: status %d, %+v", status, res)
			}
			return
		}
		var te *tokenError
		if !errors.As(err, &te) {
			t.Fatalf("error %T is not a *tokenError", err)
		}
		msg := te.Error()
		if te.Permanent && (te.Code == "" || !permanent(status, "invalid_grant")) || te.Status != status {
			t.Fatalf("status %d code %q classified permanent=%v (%s)", status, te.Code, te.Permanent, msg)
		}
		if strings.Contains(msg, "FUZZ-SECRET-value") || strings.Contains(msg, "FUZZ-REFRESH-value") {
			t.Fatalf("secret in message: %q", msg)
		}
		if strings.ContainsAny(msg, "\r\n\x00") || len(msg) > 512 {
			t.Fatalf("message not one short line (%d bytes): %q", len(msg), msg)
		}
	})
}

// msTokenBody is shaped like a Microsoft identity platform answer: a ~1.3 KB
// JWT access token, a long opaque refresh token, scope and two expiries.
func msTokenBody() []byte {
	seg := func(n int, c byte) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[(int(c)+i*7)%64]
		}
		return string(b)
	}
	at := "eyJ0eXAiOiJKV1QiLCJub25jZSI6I" + seg(60, 1) + "." + seg(1000, 2) + "." + seg(342, 3)
	rt := "0.AXoA" + seg(500, 4) + "." + seg(200, 5)
	body, _ := json.Marshal(map[string]any{
		"token_type":     "Bearer",
		"scope":          "https://outlook.office365.com/IMAP.AccessAsUser.All https://outlook.office365.com/SMTP.Send",
		"expires_in":     4361,
		"ext_expires_in": 4361,
		"access_token":   at,
		"refresh_token":  rt,
	})
	return body
}

func BenchmarkParseTokenResponse(b *testing.B) {
	body := msTokenBody()
	a := testAccount("")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := parseTokenResponse(200, "application/json; charset=utf-8", body, a); err != nil {
			b.Fatal(err)
		}
	}
}
