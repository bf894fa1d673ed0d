// Command demo-provider is the small OAuth2 provider `make demo` runs
// pizauth against, so that a newcomer can watch the whole flow without an
// account anywhere. It lives under a directory starting with "_" so that
// `go build ./...` and `go test ./...` leave it out of pizauth.
//
// It serves, on 127.0.0.1 only:
//
//	GET  /authorize  a page asking the person to allow or deny access
//	GET  /approve    the answer: back to pizauth with a code (or an error)
//	POST /token      codes (with PKCE S256) and refresh tokens exchanged
//	                 for short-lived access tokens; refresh tokens rotate
//
// It prints its base URL on stdout once listening, and exits by itself
// after -lifetime so that an interrupted demo leaves nothing running.
//
// With -browse URL it is instead the script's stand-in for a browser: it
// opens the authorisation URL, clicks Allow, follows the provider's
// redirect to pizauth and prints the page pizauth answers with.
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// clientID is the only client the demo provider knows; the demo
// configuration uses it.
const clientID = "pizauth-demo"

func main() {
	lifetime := flag.Duration("lifetime", 15*time.Minute, "exit after this long")
	expires := flag.Int("expires", 10, "lifetime of access tokens, in seconds")
	browse := flag.String("browse", "", "act as the browser for this authorisation URL, then exit")
	flag.Parse()
	if *browse != "" {
		if err := browseURL(*browse); err != nil {
			fmt.Fprintln(os.Stderr, "demo browser:", err)
			os.Exit(1)
		}
		return
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo provider:", err)
		os.Exit(1)
	}
	p := &provider{expires: *expires, codes: map[string]grant{}, refresh: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("GET /approve", p.approve)
	mux.HandleFunc("POST /token", p.token)
	fmt.Printf("http://%s\n", ln.Addr())
	time.AfterFunc(*lifetime, func() { os.Exit(0) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "demo provider:", err)
		os.Exit(1)
	}
}

// grant is what an authorisation code stands for.
type grant struct {
	challenge, redirect string
	expires             time.Time
}

type provider struct {
	expires int
	mu      sync.Mutex
	codes   map[string]grant
	refresh map[string]bool // live refresh tokens
}

// checkAuthorization validates the authorisation request pizauth built and
// returns its redirect URI. Only loopback redirect URIs are accepted: the
// demo provider must never send a code anywhere else.
func checkAuthorization(q url.Values) (*url.URL, error) {
	if q.Get("client_id") != clientID {
		return nil, fmt.Errorf("unknown client_id %q", q.Get("client_id"))
	}
	if q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
		return nil, fmt.Errorf("not an authorisation code request with PKCE S256 and a state")
	}
	ru, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || ru.Scheme != "http" || (ru.Hostname() != "localhost" && ru.Hostname() != "127.0.0.1") {
		return nil, fmt.Errorf("redirect_uri %q is not on this machine", q.Get("redirect_uri"))
	}
	return ru, nil
}

func (p *provider) authorize(w http.ResponseWriter, r *http.Request) {
	if _, err := checkAuthorization(r.URL.Query()); err != nil {
		http.Error(w, "demo provider: "+err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	allow := "/approve?" + r.URL.RawQuery
	deny := allow + "&deny=1"
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!DOCTYPE html>
<html><head><title>Demo provider</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Demo provider</h1>
<p>The program <b>%s</b> asks to read the demo mailbox (scope <code>%s</code>).
A real provider would ask you to log in first.</p>
<p><a id="allow" href="%s">Allow</a> &nbsp; <a id="deny" href="%s">Deny</a></p>
</body></html>
`, html.EscapeString(q.Get("client_id")), html.EscapeString(q.Get("scope")), html.EscapeString(allow), html.EscapeString(deny))
}

func (p *provider) approve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ru, err := checkAuthorization(q)
	if err != nil {
		http.Error(w, "demo provider: "+err.Error(), http.StatusBadRequest)
		return
	}
	back := ru.Query()
	back.Set("state", q.Get("state"))
	if q.Has("deny") {
		back.Set("error", "access_denied")
	} else {
		code := random("demo-code-")
		p.mu.Lock()
		p.codes[code] = grant{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), expires: time.Now().Add(time.Minute)}
		p.mu.Unlock()
		back.Set("code", code)
	}
	ru.RawQuery = back.Encode()
	http.Redirect(w, r, ru.String(), http.StatusFound)
}

func (p *provider) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request", "the body is not a form")
		return
	}
	if id, _, ok := r.BasicAuth(); r.PostForm.Get("client_id") != clientID && (!ok || id != clientID) {
		tokenError(w, "invalid_client", "unknown client")
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		g, ok := p.codes[code]
		delete(p.codes, code) // single use, whatever happens next
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		challenge := base64.RawURLEncoding.EncodeToString(sum[:])
		if !ok || time.Now().After(g.expires) || r.PostForm.Get("redirect_uri") != g.redirect ||
			subtle.ConstantTimeCompare([]byte(challenge), []byte(g.challenge)) != 1 {
			tokenError(w, "invalid_grant", "unknown, expired or mismatched code")
			return
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !p.refresh[rt] {
			tokenError(w, "invalid_grant", "unknown or rotated refresh token")
			return
		}
		delete(p.refresh, rt)
	default:
		tokenError(w, "unsupported_grant_type", "")
		return
	}
	rt := random("demo-refresh-")
	p.refresh[rt] = true
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token":  random("demo-access-"),
		"token_type":    "Bearer",
		"expires_in":    p.expires,
		"refresh_token": rt,
	})
}

func tokenError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func random(prefix string) string {
	b := make([]byte, 18)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

var allowLink = regexp.MustCompile(`<a id="allow" href="([^"]+)"`)

// browseURL does what a person does in the browser: open the authorisation
// URL, click Allow, and land on pizauth's page.
func browseURL(authURL string) error {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(authURL)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	m := allowLink.FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		return fmt.Errorf("the login page answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	base, _ := url.Parse(authURL)
	next, err := base.Parse(html.UnescapeString(string(m[1])))
	if err != nil {
		return err
	}
	fmt.Printf("(browser) opened the login page and clicked Allow\n")
	resp, err = client.Get(next.String())
	if err != nil {
		return err
	}
	body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	fmt.Printf("(browser) pizauth's page says: %s\n", strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pizauth answered %s", resp.Status)
	}
	return nil
}
