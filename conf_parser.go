// Configuration file parser.
//
// Grammar (EBNF; terminals are produced by conf_lexer.go):
//
//	file        = { item } EOF .
//	item        = account | setting .
//	account     = "account" STRING "{" { setting } "}" .
//	setting     = IDENT "=" value ";" .
//	value       = STRING | TIME | "none" | list | map .
//	list        = "[" [ STRING { "," STRING } [ "," ] ] "]" .
//	map         = "{" [ pair { "," pair } [ "," ] ] "}" .
//	pair        = STRING ":" STRING .
//
//	STRING      = '"' { any rune but '"' and '\' | '\"' | '\\' } '"' .
//	TIME        = digit { digit } ( "s" | "m" | "h" | "d" ) .
//	IDENT       = letter { letter | digit } .   (letter includes '_'; "none" is a keyword)
//	comment     = "//" { any rune but newline } .
//
// "account" is recognised by position, not reserved. Keys and values are
// checked while parsing, so every error points at the offending token;
// whole-file checks run at the end. Parsing stops at the first error.

package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is a parsed, validated configuration file. Every Account carries
// its effective refresh_* values, so nothing downstream knows of defaults.
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

	Accounts []*Account // in file order
	Warnings []string   // what is valid but unwise, with line and column
}

// KV is one auth_uri_fields pair; the list is ordered and keys may repeat.
type KV struct{ Key, Value string }

// Account is one `account "name" { ... }` block.
type Account struct {
	Name          string
	AuthURI       string // may be "" only when DeviceAuthURI is set
	TokenURI      string
	ClientID      string
	ClientSecret  string // "" when unset; client_secret_cmd's output once loaded
	Scopes        []string
	RedirectURI   string // default "http://localhost/"
	AuthURIFields []KV   // login_hint is folded in here

	GrantType               string // "" (a person logs in) or grantClientCredentials
	DeviceAuthURI           string // "" unless the device flow is used
	TokenEndpointAuthMethod string // "client_secret_post" (default), "client_secret_basic" or "private_key_jwt"
	RevokeURI               string // "" when unset

	// Set only by the configuration; loadCredentials reads the files and
	// runs the command, relative paths from the configuration's directory.
	ClientSecretCmd   string
	ClientKey         string    // private_key_jwt's key file
	ClientCertificate string    // its certificate file, "" when unset
	assertionKey      clientKey // once loaded

	RefreshAtLeast      time.Duration
	RefreshBeforeExpiry time.Duration
	RefreshRetry        time.Duration
}

// Defaults from SPEC §3.
const (
	defaultListen              = "127.0.0.1:0"
	defaultAuthNotifyInterval  = 15 * time.Minute
	defaultRefreshAtLeast      = 90 * time.Minute
	defaultRefreshBeforeExpiry = 90 * time.Second
	defaultRefreshRetry        = 40 * time.Second
	defaultRedirectURI         = "http://localhost/"
	authMethodPost             = "client_secret_post"
	authMethodBasic            = "client_secret_basic"
	authMethodJWT              = "private_key_jwt"
	grantClientCredentials     = "client_credentials"
)

// maxConfigSize bounds what loadConfig reads (-c pointing at a disk image).
const maxConfigSize = 64 << 20

// confError is a mistake at a place in the file: LINE:COLUMN: message,
// which loadConfig prefixes with the path, as compilers do, so that a
// `reload` error in a log names the file too.
type confError struct {
	pos
	msg string
}

func (e *confError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.line, e.col, e.msg)
}

func errAt(p pos, format string, args ...any) error {
	return &confError{pos: p, msg: fmt.Sprintf(format, args...)}
}

// loadConfig reads and parses the configuration file at path, and loads
// the credentials it names (loadCredentials).
func loadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(path, err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, readError(path, err)
	}
	if len(src) > maxConfigSize {
		return nil, fmt.Errorf("Can't read configuration file '%s': larger than %d MiB", path, maxConfigSize>>20)
	}
	c, err := parseConfig(src)
	if err != nil {
		return nil, fmt.Errorf("%s:%w", path, err)
	}
	for i, w := range c.Warnings {
		c.Warnings[i] = path + ":" + w
	}
	return c, loadCredentials(c, filepath.Dir(path))
}

// readError words an I/O failure without repeating the path.
func readError(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("Can't read configuration file '%s': %v", path, err)
}

// parseConfig parses and validates a configuration.
func parseConfig(src []byte) (*Config, error) {
	// Tokens and stored values are substrings of one copy of the source:
	// a handful of allocations per account.
	p := &parser{lx: newLexer(string(src))}
	p.cfg = &Config{
		AuthNotifyInterval:  defaultAuthNotifyInterval,
		HTTPListen:          defaultListen,
		HTTPSListen:         defaultListen,
		RefreshAtLeast:      defaultRefreshAtLeast,
		RefreshBeforeExpiry: defaultRefreshBeforeExpiry,
		RefreshRetry:        defaultRefreshRetry,
	}
	p.advance()
	if err := p.parseFile(); err != nil {
		return nil, err
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

// keyID identifies a setting name, in both scopes.
type keyID uint8

const (
	kAuthNotifyCmd keyID = iota
	kAuthNotifyInterval
	kErrorNotifyCmd
	kHTTPListen
	kHTTPSListen
	kRefreshAtLeast
	kRefreshBeforeExpiry
	kRefreshRetry
	kStartupCmd
	kTokenEventCmd
	kTransientErrorIfCmd
	kAuthURI
	kTokenURI
	kClientID
	kClientSecret
	kScopes
	kRedirectURI
	kAuthURIFields
	kLoginHint
	kDeviceAuthURI
	kTokenEndpointAuthMethod
	kRevokeURI
	kGrantType
	kClientSecretCmd
	kClientKey
	kClientCertificate
	nKeys
)

const (
	inGlobal  = 1
	inAccount = 2
)

// keys names every setting, by keyID, with its scopes. An array, laid out
// by the linker: nothing is built when `pizauth show` starts.
var keys = [nKeys]struct {
	name  string
	scope uint8
}{
	kAuthNotifyCmd:           {"auth_notify_cmd", inGlobal},
	kAuthNotifyInterval:      {"auth_notify_interval", inGlobal},
	kErrorNotifyCmd:          {"error_notify_cmd", inGlobal},
	kHTTPListen:              {"http_listen", inGlobal},
	kHTTPSListen:             {"https_listen", inGlobal},
	kRefreshAtLeast:          {"refresh_at_least", inGlobal | inAccount},
	kRefreshBeforeExpiry:     {"refresh_before_expiry", inGlobal | inAccount},
	kRefreshRetry:            {"refresh_retry", inGlobal | inAccount},
	kStartupCmd:              {"startup_cmd", inGlobal},
	kTokenEventCmd:           {"token_event_cmd", inGlobal},
	kTransientErrorIfCmd:     {"transient_error_if_cmd", inGlobal},
	kAuthURI:                 {"auth_uri", inAccount},
	kTokenURI:                {"token_uri", inAccount},
	kClientID:                {"client_id", inAccount},
	kClientSecret:            {"client_secret", inAccount},
	kScopes:                  {"scopes", inAccount},
	kRedirectURI:             {"redirect_uri", inAccount},
	kAuthURIFields:           {"auth_uri_fields", inAccount},
	kLoginHint:               {"login_hint", inAccount},
	kDeviceAuthURI:           {"device_auth_uri", inAccount},
	kTokenEndpointAuthMethod: {"token_endpoint_auth_method", inAccount},
	kRevokeURI:               {"revoke_uri", inAccount},
	kGrantType:               {"grant_type", inAccount},
	kClientSecretCmd:         {"client_secret_cmd", inAccount},
	kClientKey:               {"client_key", inAccount},
	kClientCertificate:       {"client_certificate", inAccount},
}

func lookupKey(name string) (id keyID, scope uint8, ok bool) {
	for i, k := range keys {
		if k.name == name {
			return keyID(i), k.scope, true
		}
	}
	return 0, 0, false
}

// reservedField reports whether pizauth itself puts key in an authorisation
// URL (SPEC §5), where a repeat would send conflicting values.
func reservedField(key string) bool {
	switch key {
	case "access_type", "client_id", "code_challenge", "code_challenge_method",
		"redirect_uri", "response_type", "scope", "state":
		return true
	}
	return false
}

// parser is a recursive-descent parser with one token of lookahead.
type parser struct {
	lx   *lexer
	tok  token
	prev token // the token before tok
	// The first string since the last setting name that isPlaceholder.
	placeholderAt pos
	cfg           *Config
	seen          [nKeys]pos // global settings already given
	none          [2]pos     // where http_listen, https_listen were set to none
	accts         []acctParse
	names         map[string]struct{}
}

// acctParse is what the whole-file checks need beyond the Account.
type acctParse struct {
	acct       *Account
	at         pos // the 'account' keyword
	redirectAt pos // zero if redirect_uri was defaulted
	hasAtLeast bool
	hasBefore  bool
	hasRetry   bool
	noRedirect bool // device flow or client credentials: no listener needed
}

type valKind uint8

const (
	vString valKind = iota
	vTime
	vNone
	vList
	vMap
)

// value is a parsed right-hand side, not yet checked against its key.
type value struct {
	kind  valKind
	pos   pos
	str   string
	dur   time.Duration
	list  []string
	pairs []KV
	// Positions later checks may need (not one per element: fewer
	// allocations for large files).
	emptyAt    pos // first empty string in a list
	reservedAt pos // first map key that is a reservedField
	hintAt     pos // first map key "login_hint"
}

func (p *parser) advance() {
	p.prev, p.tok = p.tok, p.lx.next()
	if p.tok.kind == tokString && p.placeholderAt == (pos{}) && isPlaceholder(p.tok.val) {
		p.placeholderAt = p.tok.pos
	}
}

// unexpected reports the current token (a lexical error as itself). Right
// after a string that spans lines, the mistake is most likely that
// string's missing closing quote, many lines up.
func (p *parser) unexpected(want string) error {
	if p.tok.kind == tokError {
		return errAt(p.tok.pos, "%s", p.tok.val)
	}
	if p.prev.kind == tokString && strings.IndexByte(p.prev.val, '\n') >= 0 {
		return errAt(p.tok.pos, "expected %s, found %s: the string opened at line %d runs on to here; is its closing '\"' missing?", want, p.tok.describe(), p.prev.line)
	}
	return errAt(p.tok.pos, "expected %s, found %s", want, p.tok.describe())
}

func (p *parser) expect(k tokKind) error {
	if p.tok.kind != k {
		return p.unexpected("'" + punctText(k) + "'")
	}
	p.advance()
	return nil
}

// parseFile: file = { item } EOF .
func (p *parser) parseFile() error {
	for p.tok.kind != tokEOF {
		if err := p.parseItem(); err != nil {
			return err
		}
	}
	return nil
}

// parseItem: item = account | setting .
func (p *parser) parseItem() error {
	if p.tok.kind == tokIdent && p.tok.val == "account" {
		return p.parseAccount()
	}
	id, v, err := p.parseSetting(inGlobal, &p.seen)
	if err != nil {
		return err
	}
	return p.setGlobal(id, v)
}

// parseAccount: account = "account" STRING "{" { setting } "}" .
func (p *parser) parseAccount() error {
	st := acctParse{at: p.tok.pos}
	p.advance()
	if p.tok.kind != tokString {
		return p.unexpected("an account name in double quotes")
	}
	name := p.tok.val
	if err := checkAccountName(name); err != nil {
		return errAt(p.tok.pos, "%v", err)
	}
	if p.names == nil {
		p.names = make(map[string]struct{})
	}
	if _, dup := p.names[name]; dup {
		return errAt(p.tok.pos, "Mustn't specify account '%s' more than once", cut(name, maxShown))
	}
	p.names[name] = struct{}{}
	p.advance()
	if err := p.expect(tokLBrace); err != nil {
		return err
	}
	a := &Account{Name: name}
	st.acct = a
	var seen [nKeys]pos
	var loginHint string
	var loginHintAt, fieldsHintAt pos
	for p.tok.kind != tokRBrace {
		if p.tok.kind == tokEOF {
			return errAt(p.tok.pos, "expected '}' to close account '%s' (line %d), found end of file", cut(name, maxShown), st.at.line)
		}
		id, v, err := p.parseSetting(inAccount, &seen)
		if err != nil {
			return err
		}
		switch id {
		case kLoginHint:
			if loginHint, err = needString("login_hint", v); err != nil {
				return err
			}
			loginHintAt = seen[kLoginHint]
			if fieldsHintAt != (pos{}) {
				return errAt(loginHintAt, bothLoginHints)
			}
		case kAuthURIFields:
			if err := p.setAccountField(&st, id, v); err != nil {
				return err
			}
			fieldsHintAt = v.hintAt
			if fieldsHintAt != (pos{}) && loginHintAt != (pos{}) {
				return errAt(fieldsHintAt, bothLoginHints)
			}
		default:
			if err := p.setAccountField(&st, id, v); err != nil {
				return err
			}
		}
	}
	p.advance()
	if loginHintAt != (pos{}) {
		// As in the original, login_hint goes after the explicit fields.
		a.AuthURIFields = append(a.AuthURIFields, KV{"login_hint", loginHint})
	}
	// One credential: a key, or a secret from the file or from a command.
	switch jwt := a.TokenEndpointAuthMethod == authMethodJWT; {
	case jwt != (a.ClientKey != "") || !jwt && a.ClientCertificate != "":
		return errAt(st.at, "client_key and token_endpoint_auth_method = \"private_key_jwt\" go together, and client_certificate needs both: set both or neither")
	case jwt && (a.ClientSecret != "" || a.ClientSecretCmd != ""):
		return errAt(st.at, "client_secret and client_secret_cmd can't be used with token_endpoint_auth_method = \"private_key_jwt\", which sends no secret: remove them")
	case a.ClientSecret != "" && a.ClientSecretCmd != "":
		return errAt(seen[kClientSecretCmd], "Mustn't specify both client_secret and client_secret_cmd: remove one")
	}
	if a.GrantType == grantClientCredentials {
		// Nobody logs in: a browser or device setting is a mistake.
		for _, k := range [...]keyID{kAuthURI, kDeviceAuthURI, kRedirectURI} {
			if at := seen[k]; at != (pos{}) {
				return errAt(at, "'%s' can't be used with grant_type = \"client_credentials\", where nobody logs in: remove it", keys[k].name)
			}
		}
		if a.ClientSecret == "" && a.ClientSecretCmd == "" && a.TokenEndpointAuthMethod != authMethodJWT {
			return errAt(st.at, "client_secret not specified: grant_type = \"client_credentials\" needs it (or client_secret_cmd, or private_key_jwt)")
		}
	}
	switch {
	case a.AuthURI == "" && a.DeviceAuthURI == "" && a.GrantType == "":
		return errAt(st.at, "auth_uri not specified")
	case a.TokenURI == "":
		return errAt(st.at, "token_uri not specified")
	case a.ClientID == "":
		return errAt(st.at, "client_id not specified")
	}
	if a.RedirectURI == "" {
		a.RedirectURI = defaultRedirectURI
	}
	if a.TokenEndpointAuthMethod == "" {
		a.TokenEndpointAuthMethod = authMethodPost
	}
	st.noRedirect = a.AuthURI == ""
	p.cfg.Accounts = append(p.cfg.Accounts, a)
	p.accts = append(p.accts, st)
	return nil
}

const bothLoginHints = "Mustn't specify both login_hint and an auth_uri_fields \"login_hint\": remove login_hint (it is deprecated)"

// checkAccountName rejects names that would break status's lines.
func checkAccountName(name string) error {
	if name == "" {
		return errors.New("account name must not be empty")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("account name must not contain control characters such as newlines or tabs")
		}
	}
	return nil
}

// parseSetting: setting = IDENT "=" value ";" . The key is checked before
// its value is parsed, so a bad key is reported at the key.
func (p *parser) parseSetting(scope uint8, seen *[nKeys]pos) (keyID, value, error) {
	if p.tok.kind != tokIdent {
		if scope == inGlobal {
			return 0, value{}, p.unexpected("a setting name or 'account'")
		}
		return 0, value{}, p.unexpected("a setting name or '}'")
	}
	keyTok := p.tok
	name := keyTok.val
	id, kscope, ok := lookupKey(name)
	switch {
	case name == "auth_error_cmd":
		return 0, value{}, errAt(keyTok.pos, "'auth_error_cmd' has been renamed to 'error_notify_cmd'")
	case name == "not_transient_error_if":
		return 0, value{}, errAt(keyTok.pos, "'not_transient_error_if' has been replaced by 'transient_error_if_cmd' (whose command exits 0 when an error is transient)")
	case name == "account" && scope == inAccount:
		return 0, value{}, errAt(keyTok.pos, "account blocks can't be nested: close this account with '}' first")
	case !ok && scope == inGlobal:
		return 0, value{}, errAt(keyTok.pos, "Unknown setting: %s", suggestKey(name, scope))
	case !ok:
		return 0, value{}, errAt(keyTok.pos, "Unknown account setting: %s", suggestKey(name, scope))
	case kscope&scope == 0 && scope == inGlobal:
		return 0, value{}, errAt(keyTok.pos, "'%s' can only be set inside an account block", name)
	case kscope&scope == 0:
		return 0, value{}, errAt(keyTok.pos, "'%s' is a global setting: move it outside the account block", name)
	case seen[id] != pos{}:
		return 0, value{}, errAt(keyTok.pos, "Mustn't specify '%s' more than once", name)
	}
	seen[id] = keyTok.pos
	p.placeholderAt = pos{}
	p.advance()
	if err := p.expect(tokEquals); err != nil {
		return 0, value{}, err
	}
	v, err := p.parseValue()
	if err != nil {
		return 0, value{}, err
	}
	if err := p.expect(tokSemi); err != nil {
		return 0, value{}, err
	}
	// Hooks are shell commands, where <a-b> may be redirections.
	if at := p.placeholderAt; at != (pos{}) && scope == inAccount && !strings.HasSuffix(name, "_cmd") {
		return 0, value{}, errAt(at, "'%s' still holds a placeholder such as <your-client-id> from the examples: replace it with your own value", name)
	}
	return id, v, nil
}

// suggestKey is advice on an unknown setting name: the setting of scope
// closest to it, if only one is a typing mistake or two away, else the
// manual. The name itself is never repeated: it may be a secret that lost
// its quotes.
func suggestKey(name string, scope uint8) string {
	best, bestD, tie := "", 3, false
	// Words whose lengths differ by more than 2 are more than 2 edits apart:
	// a huge word costs no more than a short one.
	lower := strings.ToLower(name[:min(len(name), 64)])
	for _, k := range keys {
		if len(lower) > len(k.name)+2 || len(k.name) > len(lower)+2 {
			continue
		}
		if d := editDistance(lower, k.name); k.scope&scope != 0 && d <= bestD {
			best, tie, bestD = k.name, d == bestD, d
		}
	}
	if tie || bestD > 2 || 3*bestD > len(name) {
		return "check its spelling against pizauth.conf(5)"
	}
	return "did you mean '" + best + "'?"
}

// editDistance is the Levenshtein distance between two ASCII words.
func editDistance(a, b string) int {
	row := make([]int, len(b)+1)
	for j := range row {
		row[j] = j
	}
	for i := range a {
		diag := row[0]
		row[0] = i + 1
		for j := range b {
			d := min(row[j+1], row[j], diag) + 1
			if a[i] == b[j] {
				d = diag // never more than the other two ways, plus one
			}
			diag, row[j+1] = row[j+1], d
		}
	}
	return row[len(b)]
}

// isPlaceholder says whether s holds a value left from the examples, such
// as <your-client-id> or <you@example.com>: lower-case letters, digits and
// ._ with a '-' or '@', between '<' and '>'. No URL, scope or secret a
// provider issues looks like that.
func isPlaceholder(s string) bool {
	for _, rest, ok := strings.Cut(s, "<"); ok; _, rest, ok = strings.Cut(rest, "<") {
		in, _, closed := strings.Cut(rest, ">")
		if closed && strings.ContainsAny(in, "-@") && strings.Trim(in, "abcdefghijklmnopqrstuvwxyz0123456789@._-") == "" {
			return true
		}
	}
	return false
}

// parseValue: value = STRING | TIME | "none" | list | map .
func (p *parser) parseValue() (value, error) {
	v := value{pos: p.tok.pos}
	switch p.tok.kind {
	case tokString:
		v.kind, v.str = vString, p.tok.val
	case tokTime:
		v.kind, v.dur = vTime, p.tok.dur
	case tokNone:
		v.kind = vNone
	case tokLBrack:
		return p.parseList()
	case tokLBrace:
		return p.parseMap()
	case tokIdent:
		if _, _, ok := lookupKey(p.tok.val); !ok {
			return v, errAt(p.tok.pos, "found a word where a value was expected: put strings in double quotes")
		}
		fallthrough
	default:
		return v, p.unexpected("a value (a string, a time, none, [...] or {...})")
	}
	p.advance()
	return v, nil
}

// parseList: list = "[" [ STRING { "," STRING } [ "," ] ] "]" .
func (p *parser) parseList() (value, error) {
	v := value{kind: vList, pos: p.tok.pos}
	p.advance()
	for p.tok.kind != tokRBrack {
		if p.tok.kind != tokString {
			return v, p.unexpected("a string or ']'")
		}
		if p.tok.val == "" && v.emptyAt == (pos{}) {
			v.emptyAt = p.tok.pos
		}
		v.list = append(v.list, p.tok.val)
		p.advance()
		if p.tok.kind == tokRBrack {
			break
		}
		if err := p.expect(tokComma); err != nil {
			return v, err
		}
	}
	p.advance()
	return v, nil
}

// parseMap: map = "{" [ pair { "," pair } [ "," ] ] "}" .
func (p *parser) parseMap() (value, error) {
	v := value{kind: vMap, pos: p.tok.pos}
	p.advance()
	for p.tok.kind != tokRBrace {
		if p.tok.kind != tokString {
			return v, p.unexpected("a string key or '}'")
		}
		kv, at, err := p.parsePair()
		if err != nil {
			return v, err
		}
		if reservedField(kv.Key) && v.reservedAt == (pos{}) {
			v.reservedAt = at
		}
		if kv.Key == "login_hint" && v.hintAt == (pos{}) {
			v.hintAt = at
		}
		v.pairs = append(v.pairs, kv)
		if p.tok.kind == tokRBrace {
			break
		}
		if err := p.expect(tokComma); err != nil {
			return v, err
		}
	}
	p.advance()
	return v, nil
}

// parsePair: pair = STRING ":" STRING .
func (p *parser) parsePair() (KV, pos, error) {
	at := p.tok.pos
	key := p.tok.val
	p.advance()
	if err := p.expect(tokColon); err != nil {
		return KV{}, at, err
	}
	if p.tok.kind != tokString {
		return KV{}, at, p.unexpected("a string value")
	}
	kv := KV{key, p.tok.val}
	p.advance()
	return kv, at, nil
}

func needString(key string, v value) (string, error) {
	if v.kind != vString {
		return "", errAt(v.pos, "'%s' must be a string in double quotes", key)
	}
	return v.str, nil
}

// needTime checks a time value. 0s is valid: minPacing keeps it from
// spinning.
func needTime(key string, v value) (time.Duration, error) {
	if v.kind != vTime {
		return 0, errAt(v.pos, "'%s' must be a time such as 90s, 15m, 2h or 1d", key)
	}
	return v.dur, nil
}

// setGlobal stores a global setting.
func (p *parser) setGlobal(id keyID, v value) error {
	c := p.cfg
	var err error
	switch id {
	case kAuthNotifyCmd:
		c.AuthNotifyCmd, err = needString("auth_notify_cmd", v)
	case kErrorNotifyCmd:
		c.ErrorNotifyCmd, err = needString("error_notify_cmd", v)
	case kStartupCmd:
		c.StartupCmd, err = needString("startup_cmd", v)
	case kTokenEventCmd:
		c.TokenEventCmd, err = needString("token_event_cmd", v)
	case kTransientErrorIfCmd:
		c.TransientErrorIfCmd, err = needString("transient_error_if_cmd", v)
	case kAuthNotifyInterval:
		c.AuthNotifyInterval, err = needTime("auth_notify_interval", v)
	case kRefreshAtLeast:
		c.RefreshAtLeast, err = needTime("refresh_at_least", v)
	case kRefreshBeforeExpiry:
		c.RefreshBeforeExpiry, err = needTime("refresh_before_expiry", v)
	case kRefreshRetry:
		c.RefreshRetry, err = needTime("refresh_retry", v)
	case kHTTPListen:
		c.HTTPListen, err = p.listenAddr("http_listen", 0, v)
	case kHTTPSListen:
		c.HTTPSListen, err = p.listenAddr("https_listen", 1, v)
	}
	return err
}

// listenAddr checks host:port, or none ("" in Config).
func (p *parser) listenAddr(key string, i int, v value) (string, error) {
	switch v.kind {
	case vNone:
		p.none[i] = v.pos
		return "", nil
	case vString:
	default:
		return "", errAt(v.pos, "'%s' must be an address such as \"127.0.0.1:8080\", or none", key)
	}
	switch v.str {
	case "":
		return "", errAt(v.pos, "'%s' must not be empty: use none (without quotes) to turn the listener off", key)
	case "none":
		return "", errAt(v.pos, "'%s' is the string \"none\": write none without quotes to turn the listener off", key)
	}
	_, port, err := net.SplitHostPort(v.str)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return "", errAt(v.pos, "'%s' must be host:port, e.g. \"127.0.0.1:8080\" (port 0 picks a free port): %v", key, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", errAt(v.pos, "'%s' has an invalid port '%s': use a number from 0 to 65535 (0 picks a free port)", key, cut(port, maxShown))
	}
	return v.str, nil
}

// setAccountField stores one account setting other than login_hint.
func (p *parser) setAccountField(st *acctParse, id keyID, v value) error {
	a := st.acct
	var err error
	switch id {
	case kAuthURI:
		// The browser sends no secret there, but could be shown a forged page.
		a.AuthURI, err = needURI("auth_uri", v, false)
		if err == nil && !privateURL(a.AuthURI) {
			p.cfg.Warnings = append(p.cfg.Warnings, errAt(v.pos, "'auth_uri' uses http to a host that is not loopback: anyone on the way could alter the login page; use https").Error())
		}
	case kTokenURI:
		a.TokenURI, err = needURI("token_uri", v, true)
	case kDeviceAuthURI:
		a.DeviceAuthURI, err = needURI("device_auth_uri", v, true)
	case kRevokeURI:
		a.RevokeURI, err = needURI("revoke_uri", v, true)
	case kRedirectURI:
		a.RedirectURI, err = needURI("redirect_uri", v, false)
		st.redirectAt = v.pos
	case kClientSecret:
		a.ClientSecret, err = needString("client_secret", v)
		if err == nil && a.ClientSecret == "" {
			err = errAt(v.pos, "'client_secret' must not be empty: leave it out if the provider issued no secret")
		}
	case kGrantType:
		a.GrantType, err = needString("grant_type", v)
		if err == nil && a.GrantType != grantClientCredentials {
			err = errAt(v.pos, "'grant_type' can only be \"client_credentials\": leave it out for a login in a browser or on a device")
		}
	case kTokenEndpointAuthMethod:
		a.TokenEndpointAuthMethod, err = needString("token_endpoint_auth_method", v)
		if m := a.TokenEndpointAuthMethod; err == nil && m != authMethodPost && m != authMethodBasic && m != authMethodJWT {
			err = errAt(v.pos, "'token_endpoint_auth_method' must be \"client_secret_post\", \"client_secret_basic\" or \"private_key_jwt\"")
		}
	case kClientID, kClientSecretCmd, kClientKey, kClientCertificate:
		s := map[keyID]*string{kClientID: &a.ClientID, kClientSecretCmd: &a.ClientSecretCmd, kClientKey: &a.ClientKey, kClientCertificate: &a.ClientCertificate}[id]
		if *s, err = needString(keys[id].name, v); err == nil && *s == "" {
			err = errAt(v.pos, "'%s' must not be empty", keys[id].name)
		}
	case kScopes:
		if v.kind != vList {
			return errAt(v.pos, "'scopes' must be a list of strings such as [\"a\", \"b\"]")
		}
		if v.emptyAt != (pos{}) {
			return errAt(v.emptyAt, "a scope must not be empty")
		}
		a.Scopes = v.list
	case kAuthURIFields:
		if v.kind != vMap {
			return errAt(v.pos, "'auth_uri_fields' must be a map such as {\"key\": \"value\"}")
		}
		if at := v.reservedAt; at != (pos{}) {
			for _, kv := range v.pairs {
				if reservedField(kv.Key) {
					return errAt(at, "'%s' can't be set in auth_uri_fields: pizauth sends it itself", kv.Key)
				}
			}
		}
		a.AuthURIFields = v.pairs
	case kRefreshAtLeast:
		a.RefreshAtLeast, err = needTime("refresh_at_least", v)
		st.hasAtLeast = true
	case kRefreshBeforeExpiry:
		a.RefreshBeforeExpiry, err = needTime("refresh_before_expiry", v)
		st.hasBefore = true
	case kRefreshRetry:
		a.RefreshRetry, err = needTime("refresh_retry", v)
		st.hasRetry = true
	}
	return err
}

// needURI checks a URI setting with checkURL and, for an endpoint that
// receives secrets, privateURL.
func needURI(key string, v value, secrets bool) (string, error) {
	s, err := needString(key, v)
	if err != nil {
		return "", err
	}
	if err := checkURL(s); err != nil {
		return "", errAt(v.pos, "'%s' %v", key, err)
	}
	if secrets && !privateURL(s) {
		return "", errAt(v.pos, "'%s' %s: the client secret, codes and tokens would cross the network in clear", key, mustHTTPS)
	}
	return s, nil
}

// mustHTTPS is privateURL's rule, completing a sentence naming the URL.
const mustHTTPS = "must use https (http is accepted only to a loopback address such as 127.0.0.1, where nothing crosses a network)"

// privateURL says whether what is sent to the URL s stays on this machine
// or is encrypted: https, or http to a loopback address. The one rule for
// endpoints, in the configuration and in discover.
func privateURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || strings.EqualFold(u.Hostname(), "localhost") || net.ParseIP(u.Hostname()).IsLoopback())
}

// checkURL is the one rule for URLs: absolute http or https, a host, no
// #fragment (RFC 6749 §3.1). Its error completes a sentence naming the URL.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("is not a valid URI: %v", err)
	}
	switch {
	case u.Scheme == "":
		return errors.New("must be an absolute URI starting with https:// or http://")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http or https URI")
	case u.Opaque != "" || u.Host == "":
		return fmt.Errorf("has no host: write it as %s://host/path", u.Scheme)
	case strings.IndexByte(s, '#') >= 0:
		return errors.New("must not contain a #fragment")
	}
	return nil
}

// finish runs the whole-file checks and resolves refresh_* values.
func (p *parser) finish() error {
	c := p.cfg
	if len(c.Accounts) == 0 {
		return errAt(p.tok.pos, "no account specified: add an account \"name\" { ... } block")
	}
	if c.HTTPListen == "" && c.HTTPSListen == "" {
		at := p.none[1]
		if p.none[0].line > at.line || p.none[0].line == at.line && p.none[0].col > at.col {
			at = p.none[0]
		}
		return errAt(at, "http_listen and https_listen can't both be none")
	}
	for i := range p.accts {
		st := &p.accts[i]
		a := st.acct
		if !st.hasAtLeast {
			a.RefreshAtLeast = c.RefreshAtLeast
		}
		if !st.hasBefore {
			a.RefreshBeforeExpiry = c.RefreshBeforeExpiry
		}
		if !st.hasRetry {
			a.RefreshRetry = c.RefreshRetry
		}
		if st.noRedirect {
			continue
		}
		https := redirectHTTPS(a)
		off, other := "http_listen", "https"
		if https {
			off, other = "https_listen", "http"
		}
		if https && c.HTTPSListen != "" || !https && c.HTTPListen != "" {
			continue
		}
		if st.redirectAt != (pos{}) {
			return errAt(st.redirectAt, "redirect_uri needs %s, which is none: enable %s or use an %s redirect_uri", off, off, other)
		}
		return errAt(st.at, "account '%s' uses the default redirect_uri %s, which needs http_listen, but http_listen is none: enable http_listen or set an https redirect_uri", cut(a.Name, maxShown), defaultRedirectURI)
	}
	return nil
}

// redirectHTTPS says whether the redirect_uri (http or https) is https.
func redirectHTTPS(a *Account) bool {
	return len(a.RedirectURI) >= 6 && strings.EqualFold(a.RedirectURI[:6], "https:")
}

// secureKeyVersion starts every secureKey, which dumps store.
const secureKeyVersion = 1

// secureKey is a canonical encoding of the fields that decide who a token
// belongs to and where it may be sent (SPEC §9, §10); refresh_* settings
// and hooks are deliberately left out.
//
// Encoding (stable; it is stored inside dumps):
//
//	byte     version (secureKeyVersion = 1)
//	str      name
//	str      auth_uri
//	u32      number of auth_uri_fields pairs, then per pair: str key, str value
//	str      client_id
//	str      client_secret
//	str      redirect_uri
//	u32      number of scopes, then per scope: str scope
//	str      token_uri
//	str      device_auth_uri
//	str      token_endpoint_auth_method
//	then, only for those set, in this order, a tag byte and a str:
//	'r'      revoke_uri
//	'g'      grant_type
//	's'      client_secret_cmd (client_secret is then "": the secret it
//	         prints may rotate, and a dump must not hold it)
//	'k'      client_key
//	'c'      client_certificate
//	'h'      the JWT header, once the key is loaded: its alg and the
//	         certificate's thumbprints
//
// where u32 is big-endian and str is a u32 length and the bytes. Every
// field up to token_endpoint_auth_method is present (maybe empty), so that
// part cannot be confused with the tagged fields after it. Those were added
// later and are left out when unset, so older dumps still restore. The key
// holds the client secret: for comparison and sealed dumps only.
func (a *Account) secureKey() []byte {
	b := []byte{secureKeyVersion}
	b = appendStr(b, a.Name)
	b = appendStr(b, a.AuthURI)
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.AuthURIFields)))
	for _, kv := range a.AuthURIFields {
		b = appendStr(b, kv.Key)
		b = appendStr(b, kv.Value)
	}
	b = appendStr(b, a.ClientID)
	secret := a.ClientSecret
	if a.ClientSecretCmd != "" {
		secret = ""
	}
	b = appendStr(b, secret)
	b = appendStr(b, a.RedirectURI)
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.Scopes)))
	for _, s := range a.Scopes {
		b = appendStr(b, s)
	}
	b = appendStr(b, a.TokenURI)
	b = appendStr(b, a.DeviceAuthURI)
	b = appendStr(b, a.TokenEndpointAuthMethod)
	for i, s := range [...]string{a.RevokeURI, a.GrantType, a.ClientSecretCmd, a.ClientKey, a.ClientCertificate, a.assertionKey.header} {
		if s != "" {
			b = appendStr(append(b, "rgskch"[i]), s)
		}
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// secureEqual reports whether a token obtained for a may be used for b.
func (a *Account) secureEqual(b *Account) bool {
	if a == nil || b == nil {
		return a == b
	}
	return string(a.secureKey()) == string(b.secureKey())
}
