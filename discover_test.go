package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// metaServer is an httptest provider that serves metadata documents. Its
// routes map a path to a status and a body; "{URL}" in a body stands for
// the server's own URL. Every path requested is recorded in order.
type metaServer struct {
	*httptest.Server
	mu     sync.Mutex
	routes map[string]metaRoute
	paths  []string
}

type metaRoute struct {
	status int
	body   string
	header map[string]string
}

func newMetaServer(t *testing.T, routes map[string]metaRoute) *metaServer {
	t.Helper()
	m := &metaServer{routes: routes}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		m.paths = append(m.paths, r.URL.Path)
		rt, ok := m.routes[r.URL.Path]
		m.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		for k, v := range rt.header {
			w.Header().Set(k, strings.ReplaceAll(v, "{URL}", m.URL))
		}
		if rt.status == 0 {
			rt.status = http.StatusOK
		}
		w.WriteHeader(rt.status)
		fmt.Fprint(w, strings.ReplaceAll(rt.body, "{URL}", m.URL))
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *metaServer) requested() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.paths)
}

// metaJSON builds a metadata document from fields; a nil value leaves the
// field out.
func metaJSON(fields map[string]any) string {
	for k, v := range fields {
		if v == nil {
			delete(fields, k)
		}
	}
	b, _ := json.Marshal(fields)
	return string(b)
}

// doc is a complete, well-behaved document for issuer, with over applied.
func doc(issuer string, over map[string]any) string {
	f := map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                "https://login.example.com/authorize",
		"token_endpoint":                        "https://login.example.com/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
	}
	for k, v := range over {
		f[k] = v
	}
	return metaJSON(f)
}

const (
	wkOIDC  = "/.well-known/openid-configuration"
	wkOAuth = "/.well-known/oauth-authorization-server"
)

// mustParseBlock parses a discovered block as a whole configuration file
// and returns its one account.
func mustParseBlock(t *testing.T, block string) *Account {
	t.Helper()
	c, err := parseConfig([]byte(block))
	if err != nil {
		t.Fatalf("the block does not parse: %v\n%s", err, block)
	}
	if len(c.Accounts) != 1 {
		t.Fatalf("the block has %d accounts, want 1:\n%s", len(c.Accounts), block)
	}
	return c.Accounts[0]
}

// TestDiscoverFinds: where the metadata is looked for, in which order, and
// which issuer each document must name.
func TestDiscoverFinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, asked, path, docIssuer string
		tried                        []string // paths requested, in order
		openid                       bool     // the block asks for openid
	}{
		{"root OIDC", "", wkOIDC, "{URL}", []string{wkOIDC}, true},
		{"root RFC 8414", "", wkOAuth, "{URL}", []string{wkOIDC, wkOAuth}, false},
		{"root with a slash", "/", wkOIDC, "{URL}", []string{wkOIDC}, true},
		{"root with a slash, the document too", "/", wkOIDC, "{URL}/", []string{wkOIDC}, true},
		{"path, RFC 8414 inserted", "/realm", wkOAuth + "/realm", "{URL}/realm",
			[]string{wkOIDC + "/realm", "/realm" + wkOIDC, wkOAuth + "/realm"}, false},
		{"path, OIDC inserted", "/realm", wkOIDC + "/realm", "{URL}/realm", []string{wkOIDC + "/realm"}, true},
		{"path, OIDC appended", "/a/b", "/a/b" + wkOIDC, "{URL}/a/b", []string{wkOIDC + "/a/b", "/a/b" + wkOIDC}, true},
		{"path with a slash, appended to the path without it", "/realm/", "/realm" + wkOIDC, "{URL}/realm",
			[]string{wkOIDC + "/realm", "/realm" + wkOIDC}, true},
		{"path, RFC 8414 appended", "/realm", "/realm" + wkOAuth, "{URL}/realm",
			[]string{wkOIDC + "/realm", "/realm" + wkOIDC, wkOAuth + "/realm", "/realm" + wkOAuth}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMetaServer(t, map[string]metaRoute{tc.path: {body: doc(tc.docIssuer, nil)}})
			block, warns, err := discover(m.URL+tc.asked, "", false)
			if err != nil {
				t.Fatalf("discover: %v", err)
			}
			if got := m.requested(); !slices.Equal(got, tc.tried) {
				t.Errorf("requested %q, want %q", got, tc.tried)
			}
			if len(warns) != 0 {
				t.Errorf("warnings %q for a well-behaved provider", warns)
			}
			if !strings.HasPrefix(block, "// From "+m.URL+tc.path+"\n") {
				t.Errorf("the block does not say where it came from:\n%s", block)
			}
			a := mustParseBlock(t, block)
			if a.Name != "127.0.0.1" {
				t.Errorf("account name %q, want the issuer's host", a.Name)
			}
			if a.AuthURI != "https://login.example.com/authorize" || a.TokenURI != "https://login.example.com/token" {
				t.Errorf("auth_uri %q, token_uri %q", a.AuthURI, a.TokenURI)
			}
			if want := map[bool][]string{true: {"openid"}, false: {}}[tc.openid]; !slices.Equal(a.Scopes, want) {
				t.Errorf("scopes %q, want %q", a.Scopes, want)
			}
			if strings.Contains(block, "Microsoft") {
				t.Errorf("a comment about Microsoft in the block:\n%s", block)
			}
		})
	}
}

// TestDiscoverErrors: every failure is one message and no block.
func TestDiscoverErrors(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	big := `{"issuer": "{URL}", "x": "` + strings.Repeat("a", 1<<20) + `"}`
	for _, tc := range []struct {
		name   string
		asked  string // appended to the server's URL unless it has a scheme
		routes map[string]metaRoute
		device bool
		want   string
	}{
		{"mix-up", "", map[string]metaRoute{wkOIDC: {body: doc("https://login.example.com", nil)}},
			false, `is for the issuer "https://login.example.com", not "http://127.0.0.1:`},
		{"mix-up on a path", "/a", map[string]metaRoute{"/a" + wkOIDC: {body: doc("{URL}/b", nil)}}, false, "RFC 8414 §3.3"},
		{"mix-up with a hostile issuer", "", map[string]metaRoute{wkOIDC: {body: doc("https://x\x1b[2J\u202e", nil)}}, false, `"https://x\x1b[2J\u202e"`},
		{"tenantid for a tenant", "/contoso/v2.0", map[string]metaRoute{"/contoso/v2.0" + wkOIDC: {body: doc("{URL}/{tenantid}/v2.0", nil)}}, false, "is for the issuer"},
		{"tenantid inside a segment", "/xcommon", map[string]metaRoute{"/xcommon" + wkOIDC: {body: doc("{URL}/x{tenantid}", nil)}}, false, "is for the issuer"},
		{"tenantid on another host", "/common", map[string]metaRoute{"/common" + wkOIDC: {body: doc("https://login.example.com/{tenantid}", nil)}}, false, "is for the issuer"},
		{"Microsoft's shape on another host", "/common/v2.0", map[string]metaRoute{"/common/v2.0" + wkOIDC: {body: doc("{URL}/{tenantid}/v2.0", nil)}}, false, "is for the issuer"},
		{"Microsoft's consumers shape on another host", "/consumers/v2.0", map[string]metaRoute{"/consumers/v2.0" + wkOIDC: {body: doc("{URL}/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0", nil)}}, false, "is for the issuer"},
		{"no issuer", "", map[string]metaRoute{wkOIDC: {body: doc("", nil)}}, false, `is for the issuer "", not`},
		{"unreachable", closed.URL, nil, false, "Can't fetch " + closed.URL + wkOIDC + ": "},
		{"not JSON", "", map[string]metaRoute{wkOIDC: {body: "<html>hello</html>"}}, false, "did not answer with JSON metadata (invalid character '<'"},
		{"JSON but not an object", "", map[string]metaRoute{wkOIDC: {body: `["a"]`}}, false, "did not answer with JSON metadata"},
		{"wrong type", "", map[string]metaRoute{wkOIDC: {body: `{"issuer": "{URL}", "token_endpoint": 5}`}}, false, "did not answer with JSON metadata"},
		{"too large", "", map[string]metaRoute{wkOIDC: {body: big}}, false, "larger than 1 MiB"},
		{"nothing there", "", nil, false, "No OAuth metadata for http://127.0.0.1:"},
		{"server error", "", map[string]metaRoute{wkOIDC: {status: 500}, wkOAuth: {status: 500}}, false, "answered HTTP 500"},
		{"no token endpoint", "", map[string]metaRoute{wkOIDC: {body: doc("{URL}", map[string]any{"token_endpoint": nil})}}, false, "has no token_endpoint"},
		{"no authorization endpoint", "", map[string]metaRoute{wkOIDC: {body: doc("{URL}", map[string]any{"authorization_endpoint": nil})}}, false, "has no authorization_endpoint"},
		{"no device endpoint with -d", "", map[string]metaRoute{wkOIDC: {body: doc("{URL}", nil)}}, true, "has no device_authorization_endpoint: this provider has no device flow, run pizauth discover without -d"},
		{"endpoint with a fragment", "", map[string]metaRoute{wkOIDC: {body: doc("{URL}", map[string]any{"token_endpoint": "https://a/t#x"})}}, false, "token_endpoint must not contain a #fragment"},
		{"relative endpoint", "", map[string]metaRoute{wkOIDC: {body: doc("{URL}", map[string]any{"authorization_endpoint": "/authorize"})}}, false, "authorization_endpoint must be an absolute URI"},
		{"endpoint in clear text", "", map[string]metaRoute{wkOIDC: {body: doc("{URL}", map[string]any{"revocation_endpoint": "http://login.example.com/revoke"})}}, false, "revocation_endpoint must use https"},
		{"endpoint with a newline", "", map[string]metaRoute{wkOIDC: {body: doc("{URL}", map[string]any{"token_endpoint": "https://a/t\n}\naccount \"x\" {"})}}, false, "token_endpoint contains characters other than printable ASCII"},
		{"endpoint with a bidi override", "", map[string]metaRoute{wkOIDC: {body: doc("{URL}", map[string]any{"device_authorization_endpoint": "https://a/\u202ed"})}}, false, "device_authorization_endpoint contains characters other than printable ASCII"},
		{"endpoint with a space", "", map[string]metaRoute{wkOIDC: {body: doc("{URL}", map[string]any{"token_endpoint": "https://a/t x"})}}, false, "token_endpoint contains characters other than printable ASCII"},
		{"redirect to another host", "", map[string]metaRoute{wkOIDC: {status: 302, header: map[string]string{"Location": "http://localhost:1" + wkOIDC}}}, false, "to another host or scheme, which pizauth does not follow"},
		{"redirect loop", "", map[string]metaRoute{wkOIDC: {status: 302, header: map[string]string{"Location": wkOIDC}}}, false, "redirected too often"},
		{"issuer in clear text", "http://login.example.com", nil, false, "The issuer URL must use https (http is accepted only to a loopback address such as 127.0.0.1, where nothing crosses a network)"},
		{"issuer with a query", "/?tenant=a", nil, false, "The issuer URL must not have a ?query"},
		{"issuer with a fragment", "/#a", nil, false, "The issuer URL must not contain a #fragment"},
		{"issuer not a URL", "login.example.com", nil, false, "The issuer URL must be an absolute URI starting with https://"},
		{"issuer not http", "ftp://login.example.com", nil, false, "The issuer URL must be an http or https URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMetaServer(t, tc.routes)
			asked := tc.asked
			if asked == "" || asked[0] == '/' {
				asked = m.URL + asked
			}
			block, warns, err := discover(asked, "", tc.device)
			if err == nil || block != "" || warns != nil {
				t.Fatalf("discover %s: error %v, warnings %q, block:\n%s", asked, err, warns, block)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if msg := err.Error(); clean(msg, len(msg)) != msg || strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error %q is not one printable line", msg)
			}
		})
	}
}

// TestDiscoverBlock: what the block says for each kind of provider, and
// what is warned about.
func TestDiscoverBlock(t *testing.T) {
	t.Parallel()
	dev := "https://login.example.com/device"
	for _, tc := range []struct {
		name   string
		over   map[string]any
		device bool
		check  func(t *testing.T, a *Account, block string)
		warns  []string // substrings, one per warning, in order
	}{
		{"post and basic: the default, with a secret", map[string]any{"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"}},
			false, func(t *testing.T, a *Account, block string) {
				if a.TokenEndpointAuthMethod != authMethodPost || strings.Contains(block, "token_endpoint_auth_method") || a.ClientSecret == "" {
					t.Errorf("method %q, secret %q", a.TokenEndpointAuthMethod, a.ClientSecret)
				}
			}, nil},
		{"basic only", map[string]any{"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "private_key_jwt"}},
			false, func(t *testing.T, a *Account, block string) {
				if a.TokenEndpointAuthMethod != authMethodBasic {
					t.Errorf("method %q, want basic", a.TokenEndpointAuthMethod)
				}
			}, nil},
		{"private_key_jwt offered", map[string]any{"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt"}},
			false, func(t *testing.T, a *Account, block string) {
				if a.TokenEndpointAuthMethod != authMethodPost || a.ClientSecret == "" {
					t.Errorf("method %q, secret %q: the secret should stay the default", a.TokenEndpointAuthMethod, a.ClientSecret)
				}
				// Taken up as the comment says: the secret goes, the key comes.
				jwt := regexp.MustCompile(`(?m)^ *client_secret = .*\n`).ReplaceAllString(block, "")
				jwt = regexp.MustCompile(`(?m)^ *// ((token_endpoint_auth_method|client_key|client_certificate) = )`).ReplaceAllString(jwt, "    $1")
				if b := mustParseBlock(t, jwt); b.TokenEndpointAuthMethod != authMethodJWT || b.ClientKey != "key.pem" || b.ClientCertificate != "cert.pem" {
					t.Errorf("uncommented: %+v\n%s", b, jwt)
				}
			}, nil},
		{"nothing said about authentication", map[string]any{"token_endpoint_auth_methods_supported": nil},
			false, func(t *testing.T, a *Account, block string) {
				if strings.Contains(block, "token_endpoint_auth_method") || a.ClientSecret != "YOUR_CLIENT_SECRET" {
					t.Errorf("method %q, secret %q", a.TokenEndpointAuthMethod, a.ClientSecret)
				}
			}, nil},
		{"public clients allowed", map[string]any{"token_endpoint_auth_methods_supported": []string{"none", "client_secret_post"}},
			false, func(t *testing.T, a *Account, block string) {
				if strings.Contains(block, "client_secret =") || a.TokenEndpointAuthMethod != authMethodPost {
					t.Errorf("a secret or a method for a provider accepting public clients:\n%s", block)
				}
			}, nil},
		{"device endpoint offered", map[string]any{"device_authorization_endpoint": dev, "revocation_endpoint": "https://login.example.com/revoke"},
			false, func(t *testing.T, a *Account, block string) {
				if a.DeviceAuthURI != "" || a.AuthURI == "" || !strings.Contains(block, "    // device_auth_uri = \""+dev+"\";\n") {
					t.Errorf("without -d the device endpoint should be a comment:\n%s", block)
				}
				if a.RevokeURI != "https://login.example.com/revoke" {
					t.Errorf("revoke_uri %q", a.RevokeURI)
				}
			}, nil},
		{"device flow", map[string]any{"device_authorization_endpoint": dev, "code_challenge_methods_supported": nil,
			"grant_types_supported": []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"}},
			true, func(t *testing.T, a *Account, block string) {
				if a.DeviceAuthURI != dev || a.AuthURI != "" {
					t.Errorf("device_auth_uri %q, auth_uri %q", a.DeviceAuthURI, a.AuthURI)
				}
			}, nil},
		{"device flow not listed", map[string]any{"device_authorization_endpoint": dev},
			true, nil, []string{"does not list urn:ietf:params:oauth:grant-type:device_code in grant_types_supported"}},
		{"offline_access", map[string]any{"scopes_supported": []string{"email", "offline_access"}},
			false, func(t *testing.T, a *Account, block string) {
				if !slices.Equal(a.Scopes, []string{"openid", "offline_access"}) {
					t.Errorf("scopes %q", a.Scopes)
				}
			}, nil},
		{"client credentials", map[string]any{"grant_types_supported": []string{"authorization_code", "refresh_token", "client_credentials"}},
			false, func(t *testing.T, a *Account, block string) {
				if !strings.Contains(block, "\n    // For app-only tokens (no browser, no person), see grant_type = \"client_credentials\"; in pizauth.conf(5).\n") {
					t.Errorf("no client credentials comment:\n%s", block)
				}
			}, nil},
		{"no PKCE", map[string]any{"code_challenge_methods_supported": []string{"plain"}},
			false, nil, []string{"does not list S256 in code_challenge_methods_supported: it probably does not support PKCE"}},
		{"PKCE not mentioned", map[string]any{"code_challenge_methods_supported": nil}, false, nil, []string{"does not list S256"}},
		{"grants not mentioned", map[string]any{"grant_types_supported": nil}, false, nil, nil},
		{"grants missing", map[string]any{"grant_types_supported": []string{"implicit"}}, false, nil,
			[]string{"does not list authorization_code in grant_types_supported", "does not list refresh_token in grant_types_supported"}},
		{"quotes and backslashes", map[string]any{"authorization_endpoint": `https://a/x"y\z";`, "token_endpoint": `https://a/\"`},
			false, func(t *testing.T, a *Account, block string) {
				if a.AuthURI != `https://a/x"y\z";` || a.TokenURI != `https://a/\"` {
					t.Errorf("auth_uri %q, token_uri %q", a.AuthURI, a.TokenURI)
				}
			}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMetaServer(t, map[string]metaRoute{wkOIDC: {body: doc("{URL}", tc.over)}})
			block, warns, err := discover(m.URL, "", tc.device)
			if err != nil {
				t.Fatalf("discover: %v", err)
			}
			if strings.Contains(block, "WARN") {
				t.Errorf("a warning is in the block:\n%s", block)
			}
			a := mustParseBlock(t, block)
			if a.ClientID != "YOUR_CLIENT_ID" {
				t.Errorf("client_id %q", a.ClientID)
			}
			if tc.check != nil {
				tc.check(t, a, block)
			}
			if len(warns) != len(tc.warns) {
				t.Fatalf("warnings %q, want %d", warns, len(tc.warns))
			}
			for i, w := range tc.warns {
				if !strings.Contains(warns[i], w) {
					t.Errorf("warning %q does not contain %q", warns[i], w)
				}
			}
		})
	}
}

// TestDiscoverArgs: discover takes -d, an issuer URL and an optional
// account name.
func TestDiscoverArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		argv   []string
		ok     bool
		device bool
		args   []string
	}{
		{[]string{"discover", "https://a"}, true, false, []string{"https://a"}},
		{[]string{"discover", "-d", "https://a", "n"}, true, true, []string{"https://a", "n"}},
		{[]string{"discover", "-dv", "--", "https://a"}, true, true, []string{"https://a"}},
		{[]string{"discover"}, false, false, nil},
		{[]string{"discover", "https://a", "n", "x"}, false, false, nil},
		{[]string{"discover", "-j", "https://a"}, false, false, nil},
		{[]string{"discover", "-c", "f", "https://a"}, false, false, nil},
	} {
		o, err := parseArgs(tc.argv)
		if ok := err == nil; ok != tc.ok || ok && (o.daemon != tc.device || !slices.Equal(o.args, tc.args)) {
			t.Errorf("parseArgs(%q) = %+v, %v", tc.argv, o, err)
		}
	}
}

// TestDiscoverRedirect: a redirect on the same host is followed.
func TestDiscoverRedirect(t *testing.T) {
	t.Parallel()
	m := newMetaServer(t, map[string]metaRoute{
		wkOIDC:       {status: http.StatusMovedPermanently, header: map[string]string{"Location": "{URL}/meta.json"}},
		"/meta.json": {body: doc("{URL}", nil)},
	})
	block, _, err := discover(m.URL, "", false)
	if err != nil {
		t.Fatalf("discover: %v", err)
	}
	if a := mustParseBlock(t, block); a.TokenURI != "https://login.example.com/token" {
		t.Errorf("token_uri %q", a.TokenURI)
	}
}

// TestDiscoverAccountName: the name given is quoted for the configuration
// language; one that no configuration could hold is refused.
func TestDiscoverAccountName(t *testing.T) {
	t.Parallel()
	m := newMetaServer(t, map[string]metaRoute{wkOIDC: {body: doc("{URL}", nil)}})
	for _, name := range []string{`work "mail" \ x`, "café"} {
		block, _, err := discover(m.URL, name, false)
		if err != nil {
			t.Fatalf("discover with name %q: %v", name, err)
		}
		if a := mustParseBlock(t, block); a.Name != name {
			t.Errorf("account name %q, want %q", a.Name, name)
		}
	}
	for _, name := range []string{"a\nb", "a\u202eb"} {
		if block, _, err := discover(m.URL, name, false); err == nil || block != "" {
			t.Errorf("name %q accepted:\n%s", name, block)
		}
	}
}

// The published documents of the README's two examples, trimmed of the
// fields discover does not read (the full ones list claims, keys and
// more). Google's issuer is the test server's, as the tests can't reach
// the provider; TestDiscoverReadme puts the real one back in the output.
// Microsoft's is served by the stand-in for its host (see init).
const (
	googleDoc = `{
 "issuer": "{URL}",
 "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
 "device_authorization_endpoint": "https://oauth2.googleapis.com/device/code",
 "token_endpoint": "https://oauth2.googleapis.com/token",
 "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
 "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
 "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
 "response_types_supported": ["code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token", "none"],
 "scopes_supported": ["openid", "email", "profile"],
 "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
 "code_challenge_methods_supported": ["plain", "S256"],
 "grant_types_supported": ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer"]
}`
	microsoftDoc = `{
 "token_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
 "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
 "jwks_uri": "https://login.microsoftonline.com/common/discovery/v2.0/keys",
 "response_modes_supported": ["query", "fragment", "form_post"],
 "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
 "scopes_supported": ["openid", "profile", "email", "offline_access"],
 "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
 "request_uri_parameter_supported": false,
 "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
 "authorization_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
 "device_authorization_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
 "end_session_endpoint": "https://login.microsoftonline.com/common/oauth2/v2.0/logout",
 "tenant_region_scope": null,
 "cloud_instance_name": "microsoftonline.com"
}`
)

// msDocs are what login.microsoftonline.com serves for its shared
// endpoints: organizations' and consumers' documents differ from common's
// only in the endpoint in every URL and, for consumers, the issuer, which
// names Microsoft's tenant for personal accounts.
var msDocs = map[string]string{
	"/common/v2.0" + wkOIDC:        microsoftDoc,
	"/organizations/v2.0" + wkOIDC: strings.ReplaceAll(microsoftDoc, "/common/", "/organizations/"),
	"/consumers/v2.0" + wkOIDC: strings.NewReplacer("/common/", "/consumers/",
		"{tenantid}", "9188040d-6c67-4c5b-b112-36a304b66dad").Replace(microsoftDoc),
}

// The tests can't reach Microsoft, and the issuer check treats its host
// alone specially, so a TLS server plays login.microsoftonline.com with
// msDocs: http.DefaultTransport, which discover uses, is replaced before
// any test runs, and dials that server for that host alone.
func init() {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if doc, ok := msDocs[r.URL.Path]; ok {
			io.WriteString(w, doc)
			return
		}
		http.NotFound(w, r)
	}))
	// A dial that parallel tests made redundant is abandoned mid-handshake.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		cfg := &tls.Config{}
		if addr == "login.microsoftonline.com:443" {
			// httptest's certificate is for example.com.
			addr, cfg = srv.Listener.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "example.com"}
		}
		return (&tls.Dialer{Config: cfg}).DialContext(ctx, network, addr)
	}
	http.DefaultTransport = tr
}

// TestDiscoverMicrosoft: each of Microsoft's shared endpoints is found with
// the issuer Microsoft publishes for it, and the block says who can log
// in through it.
func TestDiscoverMicrosoft(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ endpoint, issuer, who string }{
		{"common", "{tenantid}", "work or school accounts of any tenant, and personal Microsoft accounts"},
		{"organizations", "{tenantid}", "work or school accounts of any tenant, but no personal Microsoft accounts"},
		{"consumers", "9188040d-6c67-4c5b-b112-36a304b66dad", "personal Microsoft accounts only"},
	} {
		base := "https://login.microsoftonline.com/" + tc.endpoint
		block, _, err := discover(base+"/v2.0", "ms", false)
		if err != nil {
			t.Errorf("discover %s/v2.0: %v", base, err)
			continue
		}
		want := fmt.Sprintf("// From %s/v2.0%s\n// Microsoft's shared %q endpoint (issuer \"https://login.microsoftonline.com/%s/v2.0\") accepts %s.\n",
			base, wkOIDC, tc.endpoint, tc.issuer, tc.who)
		if !strings.HasPrefix(block, want) {
			t.Errorf("discover %s/v2.0 printed\n%s\nwant it to start\n%s", base, block, want)
		}
		a := mustParseBlock(t, block)
		if a.AuthURI != base+"/oauth2/v2.0/authorize" || a.TokenURI != base+"/oauth2/v2.0/token" {
			t.Errorf("%s: auth_uri %q, token_uri %q", tc.endpoint, a.AuthURI, a.TokenURI)
		}
	}
}

// TestIssuerMatches: exactly Microsoft's documented issuers for its shared
// endpoints stand in for the URL asked, and nothing like them.
func TestIssuerMatches(t *testing.T) {
	t.Parallel()
	const ms, consumers = "https://login.microsoftonline.com/", "9188040d-6c67-4c5b-b112-36a304b66dad"
	for _, tc := range []struct {
		asked, doc, tenant string
		ok                 bool
	}{
		{ms + "common/v2.0", ms + "{tenantid}/v2.0", "common", true},
		{ms + "common/v2.0/", ms + "{tenantid}/v2.0", "common", true},
		{ms + "organizations/v2.0", ms + "{tenantid}/v2.0", "organizations", true},
		{ms + "consumers/v2.0", ms + consumers + "/v2.0", "consumers", true},
		{ms + consumers + "/v2.0", ms + consumers + "/v2.0", "", true},
		{ms + "contoso.onmicrosoft.com/v2.0", ms + "contoso.onmicrosoft.com/v2.0", "", true},
		{ms + "consumers/v2.0", ms + "{tenantid}/v2.0", "", false},
		{ms + "common/v2.0", ms + consumers + "/v2.0", "", false},
		{ms + "organizations/v2.0", ms + consumers + "/v2.0", "", false},
		{ms + "contoso.onmicrosoft.com/v2.0", ms + "{tenantid}/v2.0", "", false},
		{ms + "common", ms + "{tenantid}/v2.0", "", false},
		{ms + "common", ms + "{tenantid}", "", false},
		{ms + "consumers", ms + consumers, "", false},
		{ms + "common/v2.0", ms + "{tenantid}/v2.0/", "", false},
		{ms + "common/v2.0", "https://sts.windows.net/{tenantid}/", "", false},
		{ms + "common/v2.0/x", ms + "{tenantid}/v2.0/x", "", false},
		{"https://login.microsoftonline.com.example/common/v2.0", "https://login.microsoftonline.com.example/{tenantid}/v2.0", "", false},
		{"https://login.microsoftonline.us/common/v2.0", "https://login.microsoftonline.us/{tenantid}/v2.0", "", false},
		{"http://login.microsoftonline.com/common/v2.0", "http://login.microsoftonline.com/{tenantid}/v2.0", "", false},
		{"https://login.example.com/common/v2.0", "https://login.example.com/{tenantid}/v2.0", "", false},
	} {
		base := strings.TrimSuffix(tc.asked, "/")
		tenant, ok := issuerMatches(tc.doc, tc.asked, base)
		if ok != tc.ok || ok && tenant != tc.tenant {
			t.Errorf("issuer %q for %q: accepted %v (tenant %q), want %v (tenant %q)", tc.doc, tc.asked, ok, tenant, tc.ok, tc.tenant)
		}
	}
}

// TestDiscoverReadme: the README shows exactly what discover prints for
// Google's and Microsoft's documents.
func TestDiscoverReadme(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		doc, issuer, path, name string
		warns                   int
	}{
		{googleDoc, "https://accounts.google.com", "", "accounts.google.com", 0},
		{"", "https://login.microsoftonline.com", "/common/v2.0", "login.microsoftonline.com", 1},
	} {
		m := newMetaServer(t, map[string]metaRoute{tc.path + wkOIDC: {body: tc.doc}})
		asked := m.URL
		if tc.doc == "" {
			asked = tc.issuer // the stand-in for Microsoft's host serves it
		}
		block, warns, err := discover(asked+tc.path, tc.name, false)
		if err != nil {
			t.Fatalf("discover %s: %v", tc.issuer, err)
		}
		if len(warns) != tc.warns {
			t.Errorf("%s: warnings %q", tc.issuer, warns)
		}
		mustParseBlock(t, block)
		out := "$ pizauth discover " + tc.issuer + tc.path + "\n" + strings.ReplaceAll(block, m.URL, tc.issuer)
		for _, w := range warns {
			out += "WARN - " + w + "\n"
		}
		if !strings.Contains(string(readme), out) {
			t.Errorf("README.md does not show what discover prints for %s:\n%s", tc.issuer, out)
		}
	}
}

// TestE2EDiscoverLogin: the block printed by the real binary, with the
// client ID and secret filled in, is all a server needs to log in.
func TestE2EDiscoverLogin(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	// Registered with the redirect URI the block asks for.
	c := p.addClient(fakeClient{Scopes: []string{"offline_access"}, RedirectURI: "http://127.0.0.1/"})
	m := newMetaServer(t, map[string]metaRoute{wkOAuth + "/tenant1": {body: metaJSON(map[string]any{
		"issuer":                                "{URL}/tenant1",
		"authorization_endpoint":                p.URL + "/authorize",
		"token_endpoint":                        p.URL + "/token",
		"revocation_endpoint":                   p.URL + "/revoke",
		"scopes_supported":                      []string{"mail", "offline_access"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"grant_types_supported":                 []string{"authorization_code", "client_credentials"},
	})}})
	s := newSrvEnv(t, "")
	for _, args := range [][]string{{"discover"}, {"discover", "-x", m.URL}, {"discover", m.URL, "a", "b"}} {
		if out, errOut, code := s.run(args...); code != 1 || out != "" || !strings.Contains(errOut, "pizauth discover [-d] <issuer-url> [<account>]") {
			t.Errorf("pizauth %q: exit %d, stdout %q, stderr %q; want the usage", args, code, out, errOut)
		}
	}
	out, errOut, code := s.run("discover", m.URL+"/nowhere")
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "ERROR - No OAuth metadata for ") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("discover with no metadata: exit %d, stdout %q, stderr %q; want exit 1 and one ERROR line", code, out, errOut)
	}

	block, errOut, code := s.run("discover", m.URL+"/tenant1", "work")
	if code != 0 || errOut != "WARN - The provider does not list S256 in code_challenge_methods_supported: it probably does not support PKCE, which protects the login against a stolen authorisation code\n"+
		"WARN - The provider does not list refresh_token in grant_types_supported: pizauth needs it\n" {
		t.Fatalf("discover: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(block, `grant_type = "client_credentials"`) {
		t.Errorf("no mention of the client credentials grant:\n%s", block)
	}
	if !strings.Contains(block, "\n    redirect_uri = \"http://127.0.0.1/\";\n") {
		t.Errorf("the block does not prefer a 127.0.0.1 redirect URI:\n%s", block)
	}
	block = strings.NewReplacer("YOUR_CLIENT_ID", c.ID, "YOUR_CLIENT_SECRET", c.Secret).Replace(block)
	s.writeConf(t, e2eConf(nil, block))
	s.start(t)
	if tok := s.authorise(t, "work"); tok != p.lastToken(c.ID) {
		t.Errorf("show printed %q, the provider issued %q", tok, p.lastToken(c.ID))
	}
	if n := len(p.clientRequests("/token", c.ID)); n != 1 {
		t.Errorf("%d token requests, want the one code exchange", n)
	}
}
