package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// maxMetadata bounds a metadata document, which is a few KiB.
const maxMetadata = 1 << 20

// metadata is what an account block needs from an RFC 8414 / OIDC
// Discovery document; a nil list means the provider said nothing.
type metadata struct {
	Issuer      string   `json:"issuer"`
	Auth        string   `json:"authorization_endpoint"`
	Token       string   `json:"token_endpoint"`
	Device      string   `json:"device_authorization_endpoint"`
	Revoke      string   `json:"revocation_endpoint"`
	AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	PKCE        []string `json:"code_challenge_methods_supported"`
	Grants      []string `json:"grant_types_supported"`
	Scopes      []string `json:"scopes_supported"`
}

// discoverMain runs `pizauth discover`; -d (o.daemon) asks for the device
// flow.
func discoverMain(o opts) int {
	name := ""
	if len(o.args) > 1 {
		name = o.args[1]
	}
	block, warnings, err := discover(o.args[0], name, o.daemon)
	if err != nil {
		return fatalf("%s", clean(err.Error(), maxMessage))
	}
	if _, err := os.Stdout.WriteString(block); err != nil {
		return fatalf("Can't write the account block: %v", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "WARN - %s\n", clean(w, maxMessage))
	}
	return 0
}

// discover returns the account block for issuer and the warnings for
// stderr, or only an error: never half a block to paste.
func discover(issuer, name string, device bool) (string, []string, error) {
	base, candidates, err := wellKnown(issuer)
	if err != nil {
		return "", nil, err
	}
	if name == "" {
		u, _ := url.Parse(base)
		name = u.Hostname()
	}
	if err := checkAccountName(name); err != nil || clean(name, len(name)) != name {
		return "", nil, fmt.Errorf("%q is not a valid account name: give one without control or invisible characters", name)
	}
	m, from, tenant, err := fetchMetadata(issuer, base, candidates)
	if err != nil {
		return "", nil, err
	}
	switch {
	case m.Token == "":
		return "", nil, fmt.Errorf("The metadata at %s has no token_endpoint: pizauth can't get tokens from this provider", from)
	case device && m.Device == "":
		return "", nil, fmt.Errorf("The metadata at %s has no device_authorization_endpoint: this provider has no device flow, run pizauth discover without -d", from)
	case !device && m.Auth == "":
		return "", nil, fmt.Errorf("The metadata at %s has no authorization_endpoint: pizauth can't log in to this provider", from)
	}
	for _, e := range [][2]string{{"authorization_endpoint", m.Auth}, {"token_endpoint", m.Token}, {"device_authorization_endpoint", m.Device}, {"revocation_endpoint", m.Revoke}} {
		if err := checkEndpoint(e[1]); e[1] != "" && err != nil {
			return "", nil, fmt.Errorf("The provider's %s %v", e[0], err)
		}
	}
	return accountBlock(m, name, from, tenant, device), discoverWarnings(m, device), nil
}

// wellKnown returns the issuer without a trailing '/' and the URLs to try:
// OIDC's then RFC 8414's, each inserted after the host, then appended.
func wellKnown(issuer string) (base string, urls []string, err error) {
	if err := checkEndpoint(issuer); err != nil {
		return "", nil, fmt.Errorf("The issuer URL %v", err)
	}
	if strings.Contains(issuer, "?") {
		return "", nil, errors.New("The issuer URL must not have a ?query: give the issuer exactly as the provider documents it")
	}
	base = strings.TrimSuffix(issuer, "/")
	rest := base[strings.Index(base, "://")+3:]
	origin, path := base, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		origin, path = base[:len(base)-len(rest)+i], rest[i:]
	}
	for _, wk := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		if path != "" {
			urls = append(urls, origin+wk+path)
		}
		urls = append(urls, base+wk)
	}
	return base, urls, nil
}

// checkEndpoint is checkShownURL made stricter for the network by
// privateURL.
func checkEndpoint(s string) error {
	if err := checkShownURL(s); err != nil {
		return err
	}
	if !privateURL(s) {
		return errors.New(mustHTTPS)
	}
	return nil
}

// fetchMetadata returns the first candidate with the right issuer, its URL
// and any Microsoft tenant. A transport failure ends the search.
func fetchMetadata(issuer, base string, candidates []string) (metadata, string, string, error) {
	// A command run at a terminal must not hang on a slow provider.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 || req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
			return errors.New("redirected too often, or to another host or scheme, which pizauth does not follow")
		}
		return nil
	}}
	var docErr error
	status := 0
	for _, u := range candidates {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		var resp *http.Response
		var body []byte
		if err == nil {
			if resp, err = client.Do(req); err == nil {
				body, err = io.ReadAll(io.LimitReader(resp.Body, maxMetadata+1))
				resp.Body.Close()
			}
		}
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return metadata{}, "", "", fmt.Errorf("Can't fetch %s: %v (check the issuer URL and the network)", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			status = resp.StatusCode
			continue
		}
		// A good document may follow (a web site answering every path
		// with HTML, say): keep looking, remembering the first error.
		var m metadata
		if len(body) > maxMetadata {
			err = fmt.Errorf("The metadata at %s is larger than 1 MiB: is this really an OAuth provider?", u)
		} else if err = json.Unmarshal(body, &m); err != nil {
			err = fmt.Errorf("%s did not answer with JSON metadata (%v): check the issuer URL", u, err)
		} else if tenant, ok := issuerMatches(m.Issuer, issuer, base); ok {
			return m, u, tenant, nil
		} else {
			err = fmt.Errorf("The metadata at %s is for the issuer %q, not %q: pizauth only uses a provider's own metadata (RFC 8414 §3.3); check the issuer URL", u, cut(m.Issuer, 200), issuer)
		}
		if docErr == nil {
			docErr = err
		}
	}
	if docErr != nil {
		return metadata{}, "", "", docErr
	}
	return metadata{}, "", "", fmt.Errorf("No OAuth metadata for %s: %s and the other well-known URLs answered HTTP %d; check the issuer URL", issuer, candidates[0], status)
}

// msLogin is Microsoft's login host. Its shared endpoints publish an
// issuer that names no tenant, or a tenant not in the URL asked for.
const msLogin = "https://login.microsoftonline.com/"

// msShared gives, for each shared endpoint, its issuer's tenant segment (as
// Microsoft documents them) and who can log in through it; ok is false for
// any other. A switch, not a map: a map would be built at every start.
func msShared(endpoint string) (tenant, who string, ok bool) {
	switch endpoint {
	case "common":
		return "{tenantid}", "work or school accounts of any tenant, and personal Microsoft accounts", true
	case "organizations":
		return "{tenantid}", "work or school accounts of any tenant, but no personal Microsoft accounts", true
	case "consumers":
		return "9188040d-6c67-4c5b-b112-36a304b66dad", "personal Microsoft accounts only", true
	}
	return "", "", false
}

// issuerMatches is RFC 8414 §3.3's check, and returns the shared Microsoft
// endpoint, if any, whose documented issuer is accepted in its place. That
// is exactly msLogin + endpoint + "/v2.0" asked, with msLogin + its tenant
// segment + "/v2.0" in the document: on another host, or for a tenant's own
// endpoint, the issuer must be the URL asked.
func issuerMatches(doc, issuer, base string) (string, bool) {
	if doc == issuer || doc == base {
		return "", true
	}
	t, _ := strings.CutSuffix(strings.TrimPrefix(base, msLogin), "/v2.0")
	tenant, _, ok := msShared(t)
	return t, ok && base == msLogin+t+"/v2.0" && doc == msLogin+tenant+"/v2.0"
}

// accountBlock writes the configuration text. Every value passed
// checkEndpoint or is ours, and is quoted: a hostile document can't add
// settings or comments.
func accountBlock(m metadata, name, from, tenant string, device bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "// From %s\n", from)
	if _, who, ok := msShared(tenant); ok {
		fmt.Fprintf(&b, "// Microsoft's shared %q endpoint (issuer %s) accepts %s.\n", tenant, confString(m.Issuer), who)
	}
	fmt.Fprintf(&b, "account %s {\n", confString(name))
	set := func(k, v string) { fmt.Fprintf(&b, "    %s = %s;\n", k, confString(v)) }
	if device {
		set("device_auth_uri", m.Device)
	} else {
		set("auth_uri", m.Auth)
	}
	set("token_uri", m.Token)
	if !device && m.Device != "" {
		fmt.Fprintf(&b, "    // Without a browser on this machine, use the device flow instead of auth_uri:\n    // device_auth_uri = %s;\n", confString(m.Device))
	}
	if m.Revoke != "" {
		set("revoke_uri", m.Revoke)
	}
	if slices.Contains(m.AuthMethods, authMethodBasic) && !slices.Contains(m.AuthMethods, authMethodPost) {
		set("token_endpoint_auth_method", authMethodBasic)
	}
	console, tok := "the provider's developer console", strings.SplitN(m.Token, "/", 4)[2]
	ms := strings.HasSuffix(tok, ".microsoftonline.com")
	if strings.HasSuffix(tok, ".googleapis.com") {
		console = "the Google Cloud Console (APIs & Services, Credentials)"
	} else if ms {
		console = "the Microsoft Entra admin centre (App registrations)"
	}
	fmt.Fprintf(&b, "    // Client ID: register pizauth in %s.\n", console)
	set("client_id", "YOUR_CLIENT_ID")
	if !slices.Contains(m.AuthMethods, "none") {
		b.WriteString("    // Issued with the client ID; delete this line if there is none.\n")
		set("client_secret", "YOUR_CLIENT_SECRET")
	}
	if slices.Contains(m.AuthMethods, authMethodJWT) {
		b.WriteString("    // Or, instead of a client secret, a key whose certificate you upload (pizauth.conf(5)):\n    // token_endpoint_auth_method = \"private_key_jwt\";\n    // client_key = \"key.pem\";\n    // client_certificate = \"cert.pem\";\n")
	}
	var scopes []string
	if strings.Contains(from, "/openid-configuration") {
		scopes = append(scopes, `"openid"`)
	}
	if slices.Contains(m.Scopes, "offline_access") {
		scopes = append(scopes, `"offline_access"`)
	}
	b.WriteString("    // Add the scopes your mail provider documents for IMAP, POP or SMTP.\n")
	fmt.Fprintf(&b, "    scopes = [%s];\n", strings.Join(scopes, ", "))
	// RFC 8252 §8.3 prefers a literal loopback address to localhost, which
	// a browser may resolve to ::1 as well as to 127.0.0.1.
	if !device && ms {
		b.WriteString("    // Prefer http://127.0.0.1/ to localhost, which a browser may resolve to either\n    // loopback address: add it in the app's manifest (replyUrlsWithType), then uncomment:\n    // redirect_uri = \"http://127.0.0.1/\";\n")
	} else if !device {
		b.WriteString("    // Register this redirect URI if asked: unlike localhost, which a browser may\n    // resolve to either loopback address, it reaches pizauth alone.\n    redirect_uri = \"http://127.0.0.1/\";\n")
	}
	if slices.Contains(m.Grants, "client_credentials") {
		b.WriteString("    // For app-only tokens (no browser, no person), see grant_type = \"client_credentials\"; in pizauth.conf(5).\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// discoverWarnings is what the user should know before using the block.
func discoverWarnings(m metadata, device bool) []string {
	var w []string
	// PKCE protects only the authorisation-code flow.
	if !device && !slices.Contains(m.PKCE, "S256") {
		w = append(w, "The provider does not list S256 in code_challenge_methods_supported: it probably does not support PKCE, which protects the login against a stolen authorisation code")
	}
	grant := "authorization_code"
	if device {
		grant = "urn:ietf:params:oauth:grant-type:device_code"
	}
	for _, g := range []string{grant, "refresh_token"} {
		if m.Grants != nil && !slices.Contains(m.Grants, g) {
			w = append(w, fmt.Sprintf("The provider does not list %s in grant_types_supported: pizauth needs it", g))
		}
	}
	return w
}

// confString quotes s for the configuration language.
func confString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
