package main

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// fullConfig sets every global option and every account field at least
// once, with comments, escapes, a multi-line string and trailing commas.
const fullConfig = `// pizauth configuration
auth_notify_cmd = "notify-send \"pizauth\" \"$PIZAUTH_URL\"";
auth_notify_interval = 20m;
error_notify_cmd = "logger -t pizauth \\ \"$PIZAUTH_MSG\"";
http_listen = "127.0.0.1:8080";
https_listen = "[::1]:8443";
refresh_at_least = 2h;
refresh_before_expiry = 0s; // zero is allowed here
refresh_retry = 1m;
startup_cmd = "echo started
echo twice";
token_event_cmd = "echo $PIZAUTH_EVENT";
transient_error_if_cmd = "ping -c 1 example.com";

account "office" {
    auth_uri = "https://login.example.com/authorize?tenant=x";
    token_uri = "https://login.example.com/token";
    client_id = "cid";
    client_secret = "csecret";
    scopes = ["imap", "smtp", "offline_access",];
    redirect_uri = "https://localhost/cb";
    auth_uri_fields = {"prompt": "consent", "prompt": "login",};
    login_hint = "me@example.com";
    refresh_at_least = 3h;
    refresh_before_expiry = 5m;
    refresh_retry = 2m;
    token_endpoint_auth_method = "client_secret_basic";
    revoke_uri = "https://login.example.com/revoke";
}

account "gmail" {
    auth_uri = "https://accounts.example.org/o/oauth2/auth";
    token_uri = "https://oauth2.example.org/token";
    client_id = "gid";
    scopes = [];
    auth_uri_fields = {};
    refresh_retry = 10s;
}

account "dévice" {
    device_auth_uri = "https://device.example.net/code";
    token_uri = "https://device.example.net/token";
    client_id = "did";
}
`

func TestParseFullConfig(t *testing.T) {
	c, err := parseConfig([]byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		AuthNotifyCmd:       `notify-send "pizauth" "$PIZAUTH_URL"`,
		AuthNotifyInterval:  20 * time.Minute,
		ErrorNotifyCmd:      `logger -t pizauth \ "$PIZAUTH_MSG"`,
		HTTPListen:          "127.0.0.1:8080",
		HTTPSListen:         "[::1]:8443",
		RefreshAtLeast:      2 * time.Hour,
		RefreshBeforeExpiry: 0,
		RefreshRetry:        time.Minute,
		StartupCmd:          "echo started\necho twice",
		TokenEventCmd:       "echo $PIZAUTH_EVENT",
		TransientErrorIfCmd: "ping -c 1 example.com",
		Accounts: []*Account{
			{
				Name:          "office",
				AuthURI:       "https://login.example.com/authorize?tenant=x",
				TokenURI:      "https://login.example.com/token",
				ClientID:      "cid",
				ClientSecret:  "csecret",
				Scopes:        []string{"imap", "smtp", "offline_access"},
				RedirectURI:   "https://localhost/cb",
				AuthURIFields: []KV{{"prompt", "consent"}, {"prompt", "login"}, {"login_hint", "me@example.com"}},

				TokenEndpointAuthMethod: "client_secret_basic",
				RevokeURI:               "https://login.example.com/revoke",

				RefreshAtLeast:      3 * time.Hour,
				RefreshBeforeExpiry: 5 * time.Minute,
				RefreshRetry:        2 * time.Minute,
			},
			{
				Name:     "gmail",
				AuthURI:  "https://accounts.example.org/o/oauth2/auth",
				TokenURI: "https://oauth2.example.org/token",
				ClientID: "gid",
				// Present but empty lists parse as nil, like omitted ones.
				RedirectURI:             "http://localhost/",
				TokenEndpointAuthMethod: "client_secret_post",
				RefreshAtLeast:          2 * time.Hour, // global
				RefreshBeforeExpiry:     0,             // global
				RefreshRetry:            10 * time.Second,
			},
			{
				Name:                    "dévice",
				TokenURI:                "https://device.example.net/token",
				ClientID:                "did",
				RedirectURI:             "http://localhost/",
				DeviceAuthURI:           "https://device.example.net/code",
				TokenEndpointAuthMethod: "client_secret_post",
				RefreshAtLeast:          2 * time.Hour,
				RefreshBeforeExpiry:     0,
				RefreshRetry:            time.Minute,
			},
		},
	}
	if !reflect.DeepEqual(c, want) {
		for i := range want.Accounts {
			if i < len(c.Accounts) && !reflect.DeepEqual(c.Accounts[i], want.Accounts[i]) {
				t.Errorf("account %d:\n got %+v\nwant %+v", i, *c.Accounts[i], *want.Accounts[i])
			}
		}
		c.Accounts, want.Accounts = nil, nil
		t.Fatalf("config:\n got %+v\nwant %+v", *c, *want)
	}
}

// minimal is the smallest valid configuration.
const minimal = `account "a" { auth_uri = "https://a.example/"; token_uri = "https://a.example/t"; client_id = "c"; }`

func TestParseDefaults(t *testing.T) {
	c, err := parseConfig([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		AuthNotifyInterval:  15 * time.Minute,
		HTTPListen:          "127.0.0.1:0",
		HTTPSListen:         "127.0.0.1:0",
		RefreshAtLeast:      90 * time.Minute,
		RefreshBeforeExpiry: 90 * time.Second,
		RefreshRetry:        40 * time.Second,
		Accounts: []*Account{{
			Name:                    "a",
			AuthURI:                 "https://a.example/",
			TokenURI:                "https://a.example/t",
			ClientID:                "c",
			RedirectURI:             "http://localhost/",
			TokenEndpointAuthMethod: "client_secret_post",
			RefreshAtLeast:          90 * time.Minute,
			RefreshBeforeExpiry:     90 * time.Second,
			RefreshRetry:            40 * time.Second,
		}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v %+v\nwant %+v %+v", *c, *c.Accounts[0], *want, *want.Accounts[0])
	}
}

// A client-credentials account needs neither auth_uri nor a listener, and
// its grant type is part of what a token belongs to.
func TestParseClientCredentials(t *testing.T) {
	c, err := parseConfig([]byte(`http_listen = none; https_listen = "127.0.0.1:0";
account "app" { grant_type = "client_credentials"; token_uri = "https://t/"; client_id = "c"; client_secret = "s"; scopes = ["https://outlook.office365.com/.default"]; }`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Accounts[0]
	if a.GrantType != "client_credentials" || a.AuthURI != "" || !isCC(a) {
		t.Errorf("parsed %+v", a)
	}
	b := *a
	b.GrantType = ""
	if a.secureEqual(&b) {
		t.Error("grant_type is not security-relevant")
	}
}

// 0s is a valid time for every setting, as in the original pizauth, whose
// own configurations use refresh_before_expiry = 0s.
func TestParseZeroTimes(t *testing.T) {
	c, err := parseConfig([]byte(`auth_notify_interval = 0s; refresh_retry = 0m; refresh_at_least = 0h; refresh_before_expiry = 0d;
account "a" { auth_uri = "https://a.example/"; token_uri = "https://a.example/t"; client_id = "c"; refresh_retry = 0s; refresh_at_least = 0s; refresh_before_expiry = 0s; }`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Accounts[0]
	if c.AuthNotifyInterval != 0 || a.RefreshRetry != 0 || a.RefreshAtLeast != 0 || a.RefreshBeforeExpiry != 0 {
		t.Errorf("zero times parsed as %v %v %v %v", c.AuthNotifyInterval, a.RefreshRetry, a.RefreshAtLeast, a.RefreshBeforeExpiry)
	}
}

// Globals may follow the accounts that inherit them.
func TestParseGlobalsAfterAccounts(t *testing.T) {
	c, err := parseConfig([]byte(minimal + "\nrefresh_retry = 7s; refresh_at_least = 1d; refresh_before_expiry = 3m;"))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Accounts[0]
	if a.RefreshRetry != 7*time.Second || a.RefreshAtLeast != 24*time.Hour || a.RefreshBeforeExpiry != 3*time.Minute {
		t.Errorf("effective refresh values = %v %v %v", a.RefreshRetry, a.RefreshAtLeast, a.RefreshBeforeExpiry)
	}
}

func TestParseListenersAndRedirects(t *testing.T) {
	for _, tc := range []struct{ src, http, https string }{
		{`https_listen = none;` + minimal, "127.0.0.1:0", ""},
		{`http_listen = none; account "a" { auth_uri = "https://a/"; token_uri = "https://t/"; client_id = "c"; redirect_uri = "HTTPS://localhost/"; }`, "", "127.0.0.1:0"},
		// A device-flow account never redirects, so needs no listener.
		{`http_listen = none; account "d" { device_auth_uri = "https://d/"; token_uri = "https://t/"; client_id = "c"; }`, "", "127.0.0.1:0"},
		{`http_listen = ":8080";` + minimal, ":8080", "127.0.0.1:0"},
	} {
		c, err := parseConfig([]byte(tc.src))
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if c.HTTPListen != tc.http || c.HTTPSListen != tc.https {
			t.Errorf("%s: listeners %q %q, want %q %q", tc.src, c.HTTPListen, c.HTTPSListen, tc.http, tc.https)
		}
	}
}

// acct is a valid account spread over lines 1-5, for tests that need one
// before the error they provoke.
const acct = "account \"a\" {\n auth_uri = \"https://a/\";\n token_uri = \"https://t/\";\n client_id = \"c\";\n}\n"

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		// Lexical errors.
		{`startup_cmd = "abc\q";`, `1:19: invalid escape '\q' in string: only \" and \\ are allowed`},
		{"startup_cmd = \"abc\\é\";", `1:19: invalid escape '\é' in string: only \" and \\ are allowed`},
		{`startup_cmd = "abc\`, `1:15: string opened at line 1 is never closed: add its closing '"'`},
		{"startup_cmd = \"ab\ncd;\n", `1:15: string opened at line 1 is never closed: add its closing '"'`},
		{`startup_cmd = 15;`, `1:15: a time needs a unit: s, m, h or d (strings need double quotes)`},
		{`startup_cmd = 15 s;`, `1:15: a time needs a unit: s, m, h or d (strings need double quotes)`},
		{`startup_cmd = 15ms;`, `1:15: a time is a whole number followed by s, m, h or d, such as 90s for 1.5m (strings need double quotes)`},
		{`refresh_retry = 99999999999999999999999d;`, `1:17: time too large (the maximum is about 292 years)`},
		{`refresh_retry = 106752d;`, `1:17: time too large (the maximum is about 292 years)`},
		{"startup_cmd = \xff;", `1:15: invalid UTF-8 byte 0xff: the configuration file must be UTF-8 encoded`},
		{"startup_cmd = \"é\xe9\";", `1:17: invalid UTF-8 byte 0xe9: the configuration file must be UTF-8 encoded`},
		{"// comment \xc0\n", `1:12: invalid UTF-8 byte 0xc0: the configuration file must be UTF-8 encoded`},
		{"startup_cmd = \"a\x00\";", `1:17: NUL byte not allowed in configuration file`},
		{"\x00", `1:1: NUL byte not allowed in configuration file`},
		{`startup_cmd = $;`, `1:15: unexpected character '$'`},
		{`startup_cmd = / x;`, `1:15: unexpected character '/' (comments start with //)`},
		{"startup_cmd = \"a\néé\";\té", `2:6: unexpected character 'é'`},
		{"startup_cmd =\u00a0\"x\";", `1:14: unexpected character '\u00a0'`},

		// Syntax errors.
		{"account \"a\" {\n  auth_uri = \"https://a/\"\n  token_uri = \"x\";}", `3:3: expected ';', found 'token_uri'`},
		{`=`, `1:1: expected a setting name or 'account', found '='`},
		{`account`, `1:8: expected an account name in double quotes, found end of file`},
		{`account a {}`, `1:9: expected an account name in double quotes, found a word`},
		{`account "a" }`, `1:13: expected '{', found '}'`},
		{`account "a" { ; }`, `1:15: expected a setting name or '}', found ';'`},
		{`account "a" { client_secret "s3cret"; }`, `1:29: expected '=', found a string`},
		{`account "a" { auth_uri = ; }`, `1:26: expected a value (a string, a time, none, [...] or {...}), found ';'`},
		{`account "a" { auth_uri = "https://a/"; token_uri = "https://t/";`, `1:65: expected '}' to close account 'a' (line 1), found end of file`},
		{`account "a" { scopes = ["a" "b"]; }`, `1:29: expected ',', found a string`},
		{`account "a" { scopes = ["a", 1s]; }`, `1:30: expected a string or ']', found a time`},
		{`account "a" { auth_uri_fields = {"a" "b"}; }`, `1:38: expected ':', found a string`},
		{`account "a" { auth_uri_fields = {"a": none}; }`, `1:39: expected a string value, found 'none'`},
		{`account "a" { auth_uri_fields = {1s}; }`, `1:34: expected a string key or '}', found a time`},
		{`account "a" { account "b" {} }`, `1:15: account blocks can't be nested: close this account with '}' first`},

		// Keys.
		{`foo = 1s;`, `1:1: Unknown setting: check its spelling against pizauth.conf(5)`},
		{`account "a" { foo = 1s; }`, `1:15: Unknown account setting: check its spelling against pizauth.conf(5)`},
		{`auth_error_cmd = "x";`, `1:1: 'auth_error_cmd' has been renamed to 'error_notify_cmd'`},
		{`not_transient_error_if = "x";`, `1:1: 'not_transient_error_if' has been replaced by 'transient_error_if_cmd' (whose command exits 0 when an error is transient)`},
		{`account "a" { http_listen = none; }`, `1:15: 'http_listen' is a global setting: move it outside the account block`},
		{`client_id = "x";`, `1:1: 'client_id' can only be set inside an account block`},
		{"account \"a\" {\n  client_id = \"x\";\n  client_id = \"y\";\n}", `3:3: Mustn't specify 'client_id' more than once`},
		{`auth_notify_cmd = "a"; auth_notify_cmd = "b";`, `1:24: Mustn't specify 'auth_notify_cmd' more than once`},
		{"refresh_retry = 1s;\n" + acct + "refresh_retry = 2s;", `7:1: Mustn't specify 'refresh_retry' more than once`},

		// Value types.
		{acct + `account "é" { auth_uri = 5s; }`, `6:26: 'auth_uri' must be a string in double quotes`},
		{`refresh_retry = "1s";`, `1:17: 'refresh_retry' must be a time such as 90s, 15m, 2h or 1d`},
		{`account "a" { scopes = "a"; }`, `1:24: 'scopes' must be a list of strings such as ["a", "b"]`},
		{`account "a" { scopes = ["a", ""]; }`, `1:30: a scope must not be empty`},
		{`account "a" { auth_uri_fields = ["a"]; }`, `1:33: 'auth_uri_fields' must be a map such as {"key": "value"}`},
		{`account "a" { token_endpoint_auth_method = "basic"; }`, `1:44: 'token_endpoint_auth_method' must be "client_secret_post", "client_secret_basic" or "private_key_jwt"`},
		{`account "a" { client_secret = ""; }`, `1:31: 'client_secret' must not be empty: leave it out if the provider issued no secret`},
		{`account "a" { client_id = ""; }`, `1:27: 'client_id' must not be empty`},
		{`account "a" { client_key = ""; }`, `1:28: 'client_key' must not be empty`},
		{`account "a" { client_secret_cmd = 5s; }`, `1:35: 'client_secret_cmd' must be a string in double quotes`},

		// Client authentication without a secret in the file.
		{`account "a" { grant_type = "client_credentials"; token_uri = "https://t/"; client_id = "c"; token_endpoint_auth_method = "private_key_jwt"; }`, `1:1: client_key and token_endpoint_auth_method = "private_key_jwt" go together, and client_certificate needs both: set both or neither`},
		{`account "a" { grant_type = "client_credentials"; token_uri = "https://t/"; client_id = "c"; client_key = "k"; }`, `1:1: client_key and token_endpoint_auth_method = "private_key_jwt" go together, and client_certificate needs both: set both or neither`},
		{`account "a" { auth_uri = "https://a/"; token_uri = "https://t/"; client_id = "c"; client_secret = "s"; client_certificate = "c"; }`, `1:1: client_key and token_endpoint_auth_method = "private_key_jwt" go together, and client_certificate needs both: set both or neither`},
		{`account "a" { auth_uri = "https://a/"; token_uri = "https://t/"; client_id = "c"; token_endpoint_auth_method = "private_key_jwt"; client_key = "k"; client_secret = "s"; }`, `1:1: client_secret and client_secret_cmd can't be used with token_endpoint_auth_method = "private_key_jwt", which sends no secret: remove them`},
		{`account "a" { auth_uri = "https://a/"; token_uri = "https://t/"; client_id = "c"; token_endpoint_auth_method = "private_key_jwt"; client_key = "k"; client_secret_cmd = "pass x"; }`, `1:1: client_secret and client_secret_cmd can't be used with token_endpoint_auth_method = "private_key_jwt", which sends no secret: remove them`},
		{`account "a" { auth_uri = "https://a/"; token_uri = "https://t/"; client_id = "c"; client_secret = "s"; client_secret_cmd = "pass x"; }`, `1:104: Mustn't specify both client_secret and client_secret_cmd: remove one`},

		// Listeners.
		{`http_listen = "";`, `1:15: 'http_listen' must not be empty: use none (without quotes) to turn the listener off`},
		{`https_listen = "none";`, `1:16: 'https_listen' is the string "none": write none without quotes to turn the listener off`},
		{`http_listen = "localhost";`, `1:15: 'http_listen' must be host:port, e.g. "127.0.0.1:8080" (port 0 picks a free port): missing port in address`},
		{`http_listen = "[::1:80";`, `1:15: 'http_listen' must be host:port, e.g. "127.0.0.1:8080" (port 0 picks a free port): missing ']' in address`},
		{`http_listen = "localhost:99999";`, `1:15: 'http_listen' has an invalid port '99999': use a number from 0 to 65535 (0 picks a free port)`},
		{`http_listen = "localhost:http";`, `1:15: 'http_listen' has an invalid port 'http': use a number from 0 to 65535 (0 picks a free port)`},
		{`http_listen = 15s;`, `1:15: 'http_listen' must be an address such as "127.0.0.1:8080", or none`},
		{acct + "https_listen = none;\nhttp_listen = none;\n", `7:15: http_listen and https_listen can't both be none`},
		{acct + "http_listen = none;\n", `1:1: account 'a' uses the default redirect_uri http://localhost/, which needs http_listen, but http_listen is none: enable http_listen or set an https redirect_uri`},
		{"http_listen = none;\naccount \"x\" { auth_uri = \"https://a/\"; token_uri = \"https://t/\"; client_id = \"c\"; redirect_uri = \"http://localhost/\"; }", `2:98: redirect_uri needs http_listen, which is none: enable http_listen or use an https redirect_uri`},
		{"https_listen = none;\naccount \"x\" { auth_uri = \"https://a/\"; token_uri = \"https://t/\"; client_id = \"c\"; redirect_uri = \"HTTPS://localhost/\"; }", `2:98: redirect_uri needs https_listen, which is none: enable https_listen or use an http redirect_uri`},
		// Only accounts without auth_uri are device-only.
		{"http_listen = none;\naccount \"x\" { auth_uri = \"https://a/\"; device_auth_uri = \"https://d/\"; token_uri = \"https://t/\"; client_id = \"c\"; }", `2:1: account 'x' uses the default redirect_uri http://localhost/, which needs http_listen, but http_listen is none: enable http_listen or set an https redirect_uri`},

		// Accounts.
		{``, `1:1: no account specified: add an account "name" { ... } block`},
		{"// nothing\nrefresh_retry = 1s;\n", `3:1: no account specified: add an account "name" { ... } block`},
		{acct + `account "a" {}`, `6:9: Mustn't specify account 'a' more than once`},
		{`account "" {}`, `1:9: account name must not be empty`},
		{"account \"a\tb\" {}", `1:9: account name must not contain control characters such as newlines or tabs`},
		{`account "a" { token_uri = "https://t/"; client_id = "x"; }`, `1:1: auth_uri not specified`},
		{"\n\naccount \"a\" { auth_uri = \"https://t/\"; client_id = \"x\"; }", `3:1: token_uri not specified`},
		{acct + `  account "b" { auth_uri = "https://t/"; token_uri = "https://t/"; }`, `6:3: client_id not specified`},

		// URIs.
		{`account "a" { auth_uri = "ftp://x/"; }`, `1:26: 'auth_uri' must be an http or https URI`},
		{`account "a" { token_uri = "https://x/#f"; }`, `1:27: 'token_uri' must not contain a #fragment`},
		{`account "a" { redirect_uri = "http://localhost/#"; }`, `1:30: 'redirect_uri' must not contain a #fragment`},
		// The client credentials grant: nobody logs in.
		{`account "a" { grant_type = "password"; }`, `1:28: 'grant_type' can only be "client_credentials": leave it out for a login in a browser or on a device`},
		{`account "a" { grant_type = client_credentials; }`, `1:28: found a word where a value was expected: put strings in double quotes`},
		{"account \"a\" {\n grant_type = \"client_credentials\";\n auth_uri = \"https://a/\";\n token_uri = \"https://t/\"; client_id = \"c\"; client_secret = \"s\";\n}", `3:2: 'auth_uri' can't be used with grant_type = "client_credentials", where nobody logs in: remove it`},
		{"account \"a\" {\n device_auth_uri = \"https://d/\";\n grant_type = \"client_credentials\";\n token_uri = \"https://t/\"; client_id = \"c\"; client_secret = \"s\";\n}", `2:2: 'device_auth_uri' can't be used with grant_type = "client_credentials", where nobody logs in: remove it`},
		{"account \"a\" {\n grant_type = \"client_credentials\"; token_uri = \"https://t/\"; client_id = \"c\"; client_secret = \"s\";\n redirect_uri = \"http://localhost/\";\n}", `3:2: 'redirect_uri' can't be used with grant_type = "client_credentials", where nobody logs in: remove it`},
		{`account "a" { grant_type = "client_credentials"; client_id = "c"; client_secret = "s"; }`, `1:1: token_uri not specified`},
		{`account "a" { device_auth_uri = "/x"; }`, `1:33: 'device_auth_uri' must be an absolute URI starting with https:// or http://`},
		{`account "a" { revoke_uri = "https:x"; }`, `1:28: 'revoke_uri' has no host: write it as https://host/path`},
		{`account "a" { auth_uri = "https://x y/"; }`, `1:26: 'auth_uri' is not a valid URI: invalid character " " in host name`},
		{`account "a" { auth_uri = "https://x:z/"; }`, `1:26: 'auth_uri' is not a valid URI: invalid port ":z" after host`},
		{`account "a" { auth_uri = "%zz"; }`, `1:26: 'auth_uri' is not a valid URI: invalid URL escape "%zz"`},
		{"account \"a\" {\n grant_type = \"client_credentials\";\n token_uri = \"https://t/\";\n client_id = \"c\";\n}", `1:1: client_secret not specified: grant_type = "client_credentials" needs it (or client_secret_cmd, or private_key_jwt)`},

		// Mistakes a newcomer makes, each told what to do.
		{"# a comment\n", `1:1: unexpected character '#' (comments start with //)`},
		{`refresh_retry = 1.5m;`, `1:17: a time is a whole number followed by s, m, h or d, such as 90s for 1.5m (strings need double quotes)`},
		{"account \"a\" {\n client_id = \"c;\n token_uri = \"https://t/\";\n}", `3:15: expected ';', found a word: the string opened at line 2 runs on to here; is its closing '"' missing?`},
		{"account \"a\" {\n auth_uri = \"https://a/\";\n\n client_id = \"c;\n}\n", `4:14: string opened at line 4 is never closed: add its closing '"'`},
		{`account "a" { clientid = "c"; }`, `1:15: Unknown account setting: did you mean 'client_id'?`},
		{`account "a" { Client_ID = "c"; }`, `1:15: Unknown account setting: did you mean 'client_id'?`},
		{`account "a" { scope = ["a"]; }`, `1:15: Unknown account setting: did you mean 'scopes'?`},
		{`http_listn = none;`, `1:1: Unknown setting: did you mean 'http_listen'?`},
		{`account "a" { secret = "s"; }`, `1:15: Unknown account setting: check its spelling against pizauth.conf(5)`},
		{`account "a" { client_id = "<your-client-id>"; }`, `1:27: 'client_id' still holds a placeholder such as <your-client-id> from the examples: replace it with your own value`},
		{`account "a" { client_id = "<your-client-id>.apps.googleusercontent.com"; }`, `1:27: 'client_id' still holds a placeholder such as <your-client-id> from the examples: replace it with your own value`},
		{`account "a" { token_uri = "https://login.microsoftonline.com/<tenant-id>/oauth2/v2.0/token"; }`, `1:27: 'token_uri' still holds a placeholder such as <your-client-id> from the examples: replace it with your own value`},
		{`account "a" { auth_uri_fields = {"a": "b", "login_hint": "<you@example.com>"}; }`, `1:58: 'auth_uri_fields' still holds a placeholder such as <your-client-id> from the examples: replace it with your own value`},
		{`account "a" { scopes = ["x", "<your-scope>"]; }`, `1:30: 'scopes' still holds a placeholder such as <your-client-id> from the examples: replace it with your own value`},

		// Endpoints that receive secrets: https, or http only to loopback.
		{"account \"a\" {\n token_uri = \"http://mail.example.com/token\";\n}", `2:14: 'token_uri' must use https (http is accepted only to a loopback address such as 127.0.0.1, where nothing crosses a network): the client secret, codes and tokens would cross the network in clear`},
		{`account "a" { revoke_uri = "HTTP://10.0.0.1/revoke"; }`, `1:28: 'revoke_uri' must use https (http is accepted only to a loopback address such as 127.0.0.1, where nothing crosses a network): the client secret, codes and tokens would cross the network in clear`},
		{`account "a" { device_auth_uri = "http://127.0.0.1.example.com/d"; }`, `1:33: 'device_auth_uri' must use https (http is accepted only to a loopback address such as 127.0.0.1, where nothing crosses a network): the client secret, codes and tokens would cross the network in clear`},

		// auth_uri_fields.
		{`account "a" { auth_uri_fields = {"x": "1", "state": "x"}; }`, `1:44: 'state' can't be set in auth_uri_fields: pizauth sends it itself`},
		{`account "a" { auth_uri_fields = {"code_challenge_method": "plain"}; }`, `1:34: 'code_challenge_method' can't be set in auth_uri_fields: pizauth sends it itself`},
		{`account "a" { auth_uri_fields = {"a": "x", "login_hint": "y"}; login_hint = "z"; }`, `1:64: Mustn't specify both login_hint and an auth_uri_fields "login_hint": remove login_hint (it is deprecated)`},
		{`account "a" { login_hint = "z"; auth_uri_fields = {"a": "x", "login_hint": "y"}; }`, `1:62: Mustn't specify both login_hint and an auth_uri_fields "login_hint": remove login_hint (it is deprecated)`},
	} {
		c, err := parseConfig([]byte(tc.src))
		if err == nil {
			t.Errorf("%q: accepted (%d accounts), want %s", tc.src, len(c.Accounts), tc.want)
		} else if err.Error() != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, err, tc.want)
		}
	}
	for _, k := range []string{"access_type", "client_id", "code_challenge", "code_challenge_method", "redirect_uri", "response_type", "scope", "state"} {
		src := fmt.Sprintf(`account "a" { auth_uri_fields = {%q: "v"}; }`, k)
		want := fmt.Sprintf(`1:34: '%s' can't be set in auth_uri_fields: pizauth sends it itself`, k)
		if _, err := parseConfig([]byte(src)); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %s", k, err, want)
		}
	}
}

// Endpoints over http are accepted on loopback addresses only, where
// nothing crosses a network; auth_uri, to which the browser sends no secret,
// only gets a warning, with its line and column.
func TestParseEndpointsInClear(t *testing.T) {
	for _, host := range []string{"127.0.0.1:8080", "localhost", "[::1]:99", "127.1.2.3"} {
		src := fmt.Sprintf("account \"a\" {\n auth_uri = \"http://%[1]s/a\";\n token_uri = \"http://%[1]s/t\";\n revoke_uri = \"http://%[1]s/r\"; device_auth_uri = \"http://%[1]s/d\"; client_id = \"c\";\n}", host)
		if c, err := parseConfig([]byte(src)); err != nil || len(c.Warnings) != 0 {
			t.Errorf("%s: %v, warnings %q; want accepted without warnings", host, err, c.Warnings)
		}
	}
	c, err := parseConfig([]byte("account \"a\" {\n  auth_uri = \"http://login.example.com/a\";\n  token_uri = \"https://login.example.com/t\"; client_id = \"c\";\n}"))
	want := []string{"2:14: 'auth_uri' uses http to a host that is not loopback: anyone on the way could alter the login page; use https"}
	if err != nil || !slices.Equal(c.Warnings, want) {
		t.Errorf("auth_uri over http: %v, warnings %q; want %q", err, c.Warnings, want)
	}
}

// A string in the wrong place may be a secret: it must not be echoed.
func TestParseErrorsHideStrings(t *testing.T) {
	for _, src := range []string{
		`account "a" { client_secret "s3cret"; }`,
		`account "a" { client_secret = "s3cret" "s3cret"; }`,
		`account "a" { client_secret = ["s3cret"]; }`,
		`"s3cret"`,
	} {
		_, err := parseConfig([]byte(src))
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v", src, err)
		}
	}
}

// A secret written without its quotes, as a word, a number or a mixture,
// is described, never quoted, wherever the parser meets it, and the
// position still points at it.
func TestParseErrorsHideBareWords(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`account "a" { client_secret = Xk9hunter2S3cr3t; }`, "1:31: found a word where a value was expected: put strings in double quotes"},
		{`account "a" { client_secret = 9Xk9hunter2S3cr3t; }`, "1:31: a time is a whole number followed by s, m, h or d, such as 90s for 1.5m (strings need double quotes)"},
		{`account "a" { client_secret = 12345678901; }`, "1:31: a time needs a unit: s, m, h or d (strings need double quotes)"},
		{`account "a" { client_secret = "x" Xk9hunter2S3cr3t; }`, "1:35: expected ';', found a word"},
		{`account "a" { scopes = [Xk9hunter2S3cr3t]; }`, "1:25: expected a string or ']', found a word"},
		{"account \"a\" {\n Xk9hunter2S3cr3t\n}", "2:2: Unknown account setting: check its spelling against pizauth.conf(5)"},
		{`Xk9hunter2S3cr3t = "x";`, "1:1: Unknown setting: check its spelling against pizauth.conf(5)"},
		{`account Xk9hunter2S3cr3t { }`, "1:9: expected an account name in double quotes, found a word"},
		{`http_listen = "127.0.0.1:0" token_uri;`, "1:29: expected ';', found 'token_uri'"},
	} {
		_, err := parseConfig([]byte(tc.src))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.src, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "hunter") || strings.Contains(err.Error(), "45678")) {
			t.Errorf("%s: the error quotes the secret: %v", tc.src, err)
		}
	}
}

// Values that only look a little like the examples' placeholders are
// accepted: a secret with angle brackets, a URL's, a hook's redirections.
func TestParsePlaceholderLookalikes(t *testing.T) {
	src := `auth_notify_cmd = "sort <in-file>out-file";
account "a" {
    auth_uri = "https://a/<x>";
    token_uri = "https://t/";
    client_id = "<Client-ID>";
    client_secret = "p<4ss>w0rd-<";
}`
	if _, err := parseConfig([]byte(src)); err != nil {
		t.Errorf("refused: %v", err)
	}
}

// Pathological input gets a short, positioned error without taking long.
func TestParseHugeLines(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	_, err := parseConfig([]byte("startup_cmd = 1 " + big))
	if err == nil || err.Error() != "1:15: a time needs a unit: s, m, h or d (strings need double quotes)" {
		t.Errorf("got %v", err)
	}
	_, err = parseConfig([]byte(big + " = 1s;"))
	if want := "1:1: Unknown setting: check its spelling against pizauth.conf(5)"; err == nil || err.Error() != want {
		t.Errorf("got %.200v", err)
	}
	_, err = parseConfig([]byte("startup_cmd = " + strings.Repeat("9", 10<<20) + "s;"))
	if want := "1:15: time too large (the maximum is about 292 years)"; err == nil || err.Error() != want {
		t.Errorf("got %.200v", err)
	}
	_, err = parseConfig([]byte("// " + big + "\n" + "startup_cmd = \"" + big + "é\n\"; @"))
	if err == nil || err.Error() != "3:4: unexpected character '@'" {
		t.Errorf("got %.200v", err)
	}
	c, err := parseConfig([]byte(minimal + "startup_cmd = \"" + big + "\";"))
	if err != nil || c.StartupCmd != big {
		t.Errorf("10 MB command: %.200v", err)
	}
}

func TestLexerPositions(t *testing.T) {
	src := "\ufeffé = \"a\\\"\nb\" ;\t// c\n  [ ] {}:,none 1d x_1"
	type tk struct {
		kind      tokKind
		line, col int
		val       string
	}
	want := []tk{
		{tokError, 1, 1, "unexpected character 'é'"},
	}
	l := newLexer(src)
	if got := l.next(); (tk{got.kind, got.line, got.col, got.val}) != want[0] {
		t.Fatalf("got %+v", got)
	}
	want = []tk{
		{tokIdent, 1, 1, "e"}, {tokEquals, 1, 3, ""}, {tokString, 1, 5, "a\"\nb"},
		{tokSemi, 2, 4, ""}, {tokLBrack, 3, 3, ""}, {tokRBrack, 3, 5, ""},
		{tokLBrace, 3, 7, ""}, {tokRBrace, 3, 8, ""}, {tokColon, 3, 9, ""},
		{tokComma, 3, 10, ""}, {tokNone, 3, 11, "none"}, {tokTime, 3, 16, "1d"},
		{tokIdent, 3, 19, "x_1"}, {tokEOF, 3, 22, ""}, {tokEOF, 3, 22, ""},
	}
	l = newLexer(strings.Replace(src, "é", "e", 1))
	for i, w := range want {
		got := l.next()
		if (tk{got.kind, got.line, got.col, got.val}) != w {
			t.Errorf("token %d: got %+v, want %+v", i, got, w)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "pizauth.conf")
	if err := os.WriteFile(good, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := loadConfig(good); err != nil || len(c.Accounts) != 1 {
		t.Errorf("loadConfig(good) = %v", err)
	}
	missing := filepath.Join(dir, "nope.conf")
	_, err := loadConfig(missing)
	if want := "Can't read configuration file '" + missing + "': no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("missing: got %v, want %s", err, want)
	}
	_, err = loadConfig(dir)
	if want := "Can't read configuration file '" + dir + "': is a directory"; err == nil || err.Error() != want {
		t.Errorf("directory: got %v, want %s", err, want)
	}
	huge := filepath.Join(dir, "huge.conf")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse, so the test costs no disk space.
	if err := f.Truncate(maxConfigSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = loadConfig(huge)
	if want := "Can't read configuration file '" + huge + "': larger than 64 MiB"; err == nil || err.Error() != want {
		t.Errorf("huge: got %v, want %s", err, want)
	}
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("\n  oops"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file's path first, as a compiler writes it, so that a reload
	// error in the log says which file.
	if _, err = loadConfig(bad); err == nil || err.Error() != bad+":2:3: Unknown setting: check its spelling against pizauth.conf(5)" {
		t.Errorf("bad: got %v", err)
	}
}

func secureTestAccount() *Account {
	return &Account{
		Name:                    "a",
		AuthURI:                 "https://a/",
		TokenURI:                "https://t/",
		ClientID:                "id",
		ClientSecret:            "secret",
		Scopes:                  []string{"s1", "s2"},
		RedirectURI:             "http://localhost/",
		AuthURIFields:           []KV{{"k1", "v1"}, {"k2", "v2"}},
		DeviceAuthURI:           "https://d/",
		TokenEndpointAuthMethod: "client_secret_post",
		RevokeURI:               "https://r/",
		RefreshAtLeast:          time.Hour,
		RefreshBeforeExpiry:     time.Minute,
		RefreshRetry:            time.Second,
	}
}

func TestSecureEqual(t *testing.T) {
	base := secureTestAccount()
	if !base.secureEqual(secureTestAccount()) {
		t.Fatal("identical accounts unequal")
	}
	for name, change := range map[string]func(*Account){
		"name":           func(a *Account) { a.Name = "b" },
		"auth_uri":       func(a *Account) { a.AuthURI += "x" },
		"token_uri":      func(a *Account) { a.TokenURI += "x" },
		"client_id":      func(a *Account) { a.ClientID += "x" },
		"client_secret":  func(a *Account) { a.ClientSecret = "" },
		"scopes":         func(a *Account) { a.Scopes = []string{"s2", "s1"} },
		"scope added":    func(a *Account) { a.Scopes = append(a.Scopes, "s3") },
		"redirect_uri":   func(a *Account) { a.RedirectURI = "https://localhost/" },
		"fields order":   func(a *Account) { a.AuthURIFields = []KV{{"k2", "v2"}, {"k1", "v1"}} },
		"field value":    func(a *Account) { a.AuthURIFields[1].Value = "v3" },
		"field dropped":  func(a *Account) { a.AuthURIFields = a.AuthURIFields[:1] },
		"device uri":     func(a *Account) { a.DeviceAuthURI = "" },
		"auth method":    func(a *Account) { a.TokenEndpointAuthMethod = "client_secret_basic" },
		"revoke_uri":     func(a *Account) { a.RevokeURI += "x" },
		"no revoke_uri":  func(a *Account) { a.RevokeURI = "" },
		"grant_type":     func(a *Account) { a.GrantType = "client_credentials" },
		"secret command": func(a *Account) { a.ClientSecretCmd = "pass x" },
		"client_key":     func(a *Account) { a.ClientKey = "k" },
		"certificate":    func(a *Account) { a.ClientCertificate = "c" },
		"key's header":   func(a *Account) { a.assertionKey.header = "h" },
		// Boundaries between fields must not be movable.
		"name/auth_uri": func(a *Account) { a.Name, a.AuthURI = "ahttps://a/", "" },
		"scope split":   func(a *Account) { a.Scopes = []string{"s1s2"} },
		"kv split":      func(a *Account) { a.AuthURIFields[0] = KV{"k1v", "1"} },
	} {
		b := secureTestAccount()
		change(b)
		if base.secureEqual(b) || b.secureEqual(base) {
			t.Errorf("%s changed: still secureEqual", name)
		}
	}
	for name, change := range map[string]func(*Account){
		"refresh_at_least":      func(a *Account) { a.RefreshAtLeast *= 2 },
		"refresh_before_expiry": func(a *Account) { a.RefreshBeforeExpiry *= 2 },
		"refresh_retry":         func(a *Account) { a.RefreshRetry *= 2 },
		"empty vs nil scopes":   func(a *Account) { a.Scopes = a.Scopes[:0]; base.Scopes = nil },
	} {
		b := secureTestAccount()
		change(b)
		if !base.secureEqual(b) {
			t.Errorf("%s changed: no longer secureEqual", name)
		}
		base = secureTestAccount()
	}
	if base.secureEqual(nil) || !(*Account)(nil).secureEqual(nil) {
		t.Error("nil handling")
	}
}

// The key is stored in dumps: its bytes must never change silently.
func TestSecureKeyStable(t *testing.T) {
	a := &Account{Name: "n", AuthURI: "u", AuthURIFields: []KV{{"k", "v"}}, ClientID: "i",
		RedirectURI: "r", Scopes: []string{"s"}, TokenURI: "t", TokenEndpointAuthMethod: "m"}
	want := []byte("\x01" +
		"\x00\x00\x00\x01n" + "\x00\x00\x00\x01u" +
		"\x00\x00\x00\x01" + "\x00\x00\x00\x01k" + "\x00\x00\x00\x01v" +
		"\x00\x00\x00\x01i" + "\x00\x00\x00\x00" + "\x00\x00\x00\x01r" +
		"\x00\x00\x00\x01" + "\x00\x00\x00\x01s" +
		"\x00\x00\x00\x01t" + "\x00\x00\x00\x00" + "\x00\x00\x00\x01m")
	if got := a.secureKey(); !bytes.Equal(got, want) {
		t.Errorf("secureKey = %q\nwant        %q", got, want)
	}
	// Fields added later are tagged, and absent when unset: the key above
	// is what dumps made before revoke_uri counted still hold.
	a.RevokeURI = "v"
	want = append(want, "r\x00\x00\x00\x01v"...)
	if got := a.secureKey(); !bytes.Equal(got, want) {
		t.Errorf("secureKey with revoke_uri = %q\nwant        %q", got, want)
	}
}

// Reload compares a freshly parsed account with the running one.
func TestSecureEqualAcrossParses(t *testing.T) {
	c1, err := parseConfig([]byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := parseConfig([]byte(strings.Replace(fullConfig, "refresh_retry = 2m;", "refresh_retry = 9m;", 1)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range c1.Accounts {
		if !c1.Accounts[i].secureEqual(c2.Accounts[i]) {
			t.Errorf("account %s differs", c1.Accounts[i].Name)
		}
	}
	c3, err := parseConfig([]byte(strings.Replace(fullConfig, `login_hint = "me@example.com"`, `login_hint = "you@example.com"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if c1.Accounts[0].secureEqual(c3.Accounts[0]) {
		t.Error("login_hint change not noticed")
	}
}

var errPrefix = regexp.MustCompile(`^([0-9]+):([0-9]+): .`)

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullConfig))
	f.Add([]byte(minimal))
	f.Add([]byte(acct + "http_listen = none;"))
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := parseConfig(src)
		if err != nil {
			m := errPrefix.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("error without position: %q", err)
			}
			var line, col int
			fmt.Sscan(m[1], &line)
			fmt.Sscan(m[2], &col)
			if line < 1 || col < 1 || line > bytes.Count(src, []byte("\n"))+1 || col > len(src)+1 {
				t.Fatalf("position out of range: %q", err)
			}
			return
		}
		if err := checkConfig(c); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		c2, err := parseConfig(src)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}

// checkConfig re-derives SPEC §3's invariants independently of the parser.
func checkConfig(c *Config) error {
	if len(c.Accounts) == 0 {
		return fmt.Errorf("no accounts")
	}
	if c.HTTPListen == "" && c.HTTPSListen == "" {
		return fmt.Errorf("both listeners off")
	}
	for _, l := range []string{c.HTTPListen, c.HTTPSListen} {
		if l == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(l); err != nil {
			return fmt.Errorf("listener %q: %v", l, err)
		}
	}
	if c.AuthNotifyInterval <= 0 || c.RefreshAtLeast <= 0 || c.RefreshRetry <= 0 || c.RefreshBeforeExpiry < 0 {
		return fmt.Errorf("bad global durations")
	}
	names := map[string]bool{}
	for _, a := range c.Accounts {
		if a.Name == "" || names[a.Name] {
			return fmt.Errorf("bad or duplicate name %q", a.Name)
		}
		names[a.Name] = true
		if a.TokenURI == "" || a.ClientID == "" || a.RedirectURI == "" || (a.AuthURI == "" && a.DeviceAuthURI == "") {
			return fmt.Errorf("%s: mandatory field empty", a.Name)
		}
		for _, u := range []string{a.AuthURI, a.TokenURI, a.RedirectURI, a.DeviceAuthURI, a.RevokeURI} {
			if u == "" {
				continue
			}
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || strings.Contains(u, "#") {
				return fmt.Errorf("%s: bad URI %q", a.Name, u)
			}
		}
		for _, kv := range a.AuthURIFields {
			if strings.Contains(" access_type client_id code_challenge code_challenge_method redirect_uri response_type scope state ", " "+kv.Key+" ") {
				return fmt.Errorf("%s: reserved key %q", a.Name, kv.Key)
			}
		}
		if a.TokenEndpointAuthMethod != "client_secret_post" && a.TokenEndpointAuthMethod != "client_secret_basic" {
			return fmt.Errorf("%s: auth method %q", a.Name, a.TokenEndpointAuthMethod)
		}
		if a.RefreshAtLeast <= 0 || a.RefreshRetry <= 0 || a.RefreshBeforeExpiry < 0 {
			return fmt.Errorf("%s: bad durations", a.Name)
		}
		if a.AuthURI != "" {
			p, _ := url.Parse(a.RedirectURI)
			if p.Scheme == "https" && c.HTTPSListen == "" || p.Scheme == "http" && c.HTTPListen == "" {
				return fmt.Errorf("%s: redirect needs a listener that is off", a.Name)
			}
		}
	}
	return nil
}

// genConfig returns a configuration with n accounts of typical size.
func genConfig(n int) []byte {
	var b bytes.Buffer
	b.WriteString("auth_notify_cmd = \"notify-send pizauth \\\"$PIZAUTH_URL\\\"\";\nrefresh_retry = 30s;\n")
	for i := range n {
		fmt.Fprintf(&b, `account "acct%d" {
    // Account number %d.
    auth_uri = "https://login.example.com/common/oauth2/v2.0/authorize";
    token_uri = "https://login.example.com/common/oauth2/v2.0/token";
    client_id = "00000000-0000-0000-0000-%012d";
    client_secret = "secret-%d";
    scopes = ["https://outlook.office365.com/IMAP.AccessAsUser.All", "offline_access"];
    auth_uri_fields = {"login_hint": "user%d@example.com"};
    refresh_at_least = 1h;
}
`, i, i, i, i, i)
	}
	return b.Bytes()
}

func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1, 100, 10000} {
		src := genConfig(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := parseConfig(src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestE2EConfigWarningShown: a configuration warning reaches the terminal
// that starts the server, detached or not, whatever the log level.
func TestE2EConfigWarningShown(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	acct := strings.Replace(p.account("a", p.addClient(fakeClient{}), ""), p.URL+"/authorize", "http://login.example.com/authorize", 1)
	s := newSrvEnv(t, e2eConf(nil, acct))
	want := "WARN - " + s.confPath + ":7:16: 'auth_uri' uses http to a host that is not loopback"
	if _, errOut, code := s.run("server"); code != 0 || !strings.Contains(errOut, want) {
		t.Errorf("pizauth server: exit %d, stderr %q; want %q", code, errOut, want)
	}
	s.run("shutdown")
	e2eWait(t, 5*time.Second, func() bool { _, _, code := s.run("status"); return code != 0 }, "the server to stop")
	cmd := exec.Command(e2eBin, "server", "-d", "-c", s.confPath)
	cmd.Env = s.env
	var errOut e2eBuffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { s.run("shutdown"); cmd.Wait() }()
	e2eWait(t, 5*time.Second, func() bool { return strings.Contains(errOut.String(), want) }, "the warning on stderr with -d")
}

// TestParseClientAuth: client credentials with a secret command or a key
// need no client_secret; the paths and the command are kept as written.
func TestParseClientAuth(t *testing.T) {
	c, err := parseConfig([]byte(`
account "cmd" { grant_type = "client_credentials"; token_uri = "https://t/"; client_id = "c"; client_secret_cmd = "pass show x"; }
account "jwt" { grant_type = "client_credentials"; token_uri = "https://t/"; client_id = "c";
    token_endpoint_auth_method = "private_key_jwt"; client_key = "k.pem"; client_certificate = "/etc/c.pem"; }
`))
	if err != nil {
		t.Fatal(err)
	}
	cmd, jwt := c.Accounts[0], c.Accounts[1]
	if cmd.ClientSecretCmd != "pass show x" || cmd.ClientSecret != "" || cmd.TokenEndpointAuthMethod != authMethodPost {
		t.Errorf("client_secret_cmd account: %+v", cmd)
	}
	if jwt.ClientKey != "k.pem" || jwt.ClientCertificate != "/etc/c.pem" || jwt.TokenEndpointAuthMethod != authMethodJWT {
		t.Errorf("private_key_jwt account: %+v", jwt)
	}
}
