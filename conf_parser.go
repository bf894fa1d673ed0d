package main

import "time"

// Config is a parsed, validated configuration file. Durations are resolved:
// every Account carries its effective refresh_* values (its own override or
// the global one), so nothing downstream needs to know about defaults.
type Config struct {
	AuthNotifyCmd       string        // "" when unset
	AuthNotifyInterval  time.Duration // default 15m
	ErrorNotifyCmd      string        // "" when unset: errors are logged
	HTTPListen          string        // "" when `none`; default "127.0.0.1:0"
	HTTPSListen         string        // "" when `none`; default "127.0.0.1:0"
	RefreshAtLeast      time.Duration // default 90m
	RefreshBeforeExpiry time.Duration // default 90s
	RefreshRetry        time.Duration // default 40s
	StartupCmd          string
	TokenEventCmd       string
	TransientErrorIfCmd string

	// Accounts in the order they appear in the file.
	Accounts []*Account
}

// KV is one auth_uri_fields pair; the list is ordered and keys may repeat.
type KV struct{ Key, Value string }

// Account is one `account "name" { ... }` block.
type Account struct {
	Name          string
	AuthURI       string // may be "" only when DeviceAuthURI is set
	TokenURI      string
	ClientID      string
	ClientSecret  string // "" when unset
	Scopes        []string
	RedirectURI   string // default "http://localhost/"
	AuthURIFields []KV   // login_hint is folded in here

	// Issue 7 additions.
	DeviceAuthURI           string // "" unless the device flow is used
	TokenEndpointAuthMethod string // "client_secret_post" (default) or "client_secret_basic"
	RevokeURI               string // "" when unset

	// Effective values: the account's override, else the global setting.
	RefreshAtLeast      time.Duration
	RefreshBeforeExpiry time.Duration
	RefreshRetry        time.Duration
}
