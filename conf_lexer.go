package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The configuration lexer has the shape of text/template/parse/lex.go:
// small state functions, driven synchronously by next(), so no goroutine
// can leak. Positions are 1-based lines and columns, a column counting
// runes as a UTF-8 aware editor does. Any input yields tokens or one error
// token, never a panic, in time linear in its length.

// tokKind classifies a token.
type tokKind uint8

const (
	tokEOF tokKind = iota
	tokError
	tokString // val holds the unescaped contents
	tokTime   // val holds the source text, dur the value
	tokIdent
	tokNone // the keyword `none`
	tokEquals
	tokSemi
	tokComma
	tokColon
	tokLBrace
	tokRBrace
	tokLBrack
	tokRBrack
)

// pos is a 1-based line and rune column. The zero pos means "not seen".
type pos struct{ line, col int }

// token is one lexeme; for tokError, val is the message.
type token struct {
	kind tokKind
	pos
	val string
	dur time.Duration
}

// maxShown bounds how much of a string an error message repeats.
const maxShown = 64

// describe names a token for "expected X, found Y", repeating only what
// cannot be a secret: punctuation, keywords and setting names. A string,
// a bare word or a number may be a secret whose quotes were forgotten.
func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokString:
		return "a string"
	case tokTime:
		return "a time"
	case tokIdent:
		if _, _, ok := lookupKey(t.val); ok || t.val == "account" {
			return "'" + t.val + "'"
		}
		return "a word"
	case tokNone:
		return "'none'"
	case tokError:
		return t.val
	}
	return "'" + punctText(t.kind) + "'"
}

// puncts spells the punctuation tokens in tokKind order from tokEquals.
const puncts = "=;,:{}[]"

func punctText(k tokKind) string { return puncts[k-tokEquals : k-tokEquals+1] }

// stateFn is one state of the lexer; nil once it has emitted a token.
type stateFn func(*lexer) stateFn

// lexer turns configuration source into tokens.
type lexer struct {
	src   string
	off   int // byte offset of the next unread byte
	pos       // position of src[off]
	start pos // position of the token being scanned
	tok   token
	done  bool // an EOF or error token was emitted: keep returning it
}

func newLexer(src string) *lexer {
	l := &lexer{src: src, pos: pos{1, 1}}
	// A byte order mark is no part of the configuration, nor a column.
	if strings.HasPrefix(src, "\ufeff") {
		l.off = len("\ufeff")
	}
	return l
}

// next returns the next token; after EOF or an error, that one for ever.
func (l *lexer) next() token {
	if l.done {
		return l.tok
	}
	for state := lexAny; state != nil; {
		state = state(l)
	}
	return l.tok
}

func (l *lexer) emit(k tokKind, val string) stateFn {
	l.tok = token{kind: k, pos: l.start, val: val}
	l.done = k == tokEOF
	return nil
}

// errorAt emits an error token at p and stops the lexer.
func (l *lexer) errorAt(p pos, format string, args ...any) stateFn {
	l.tok = token{kind: tokError, pos: p, val: fmt.Sprintf(format, args...)}
	l.done = true
	return nil
}

// step consumes one rune, or emits an error for a NUL or invalid UTF-8.
func (l *lexer) step() bool {
	c := l.src[l.off]
	if c < utf8.RuneSelf {
		if c == 0 {
			l.errorAt(l.pos, "NUL byte not allowed in configuration file")
			return false
		}
		l.off++
		if c == '\n' {
			l.line++
			l.col = 1
		} else {
			l.col++
		}
		return true
	}
	r, n := utf8.DecodeRuneInString(l.src[l.off:])
	if r == utf8.RuneError && n == 1 {
		l.errorAt(l.pos, "invalid UTF-8 byte 0x%02x: the configuration file must be UTF-8 encoded", c)
		return false
	}
	l.off += n
	l.col++
	return true
}

// runeErr emits the error for a rune that can't start or continue a lexeme.
func (l *lexer) runeErr(what string) stateFn {
	if !l.step() {
		return nil
	}
	r, _ := utf8.DecodeLastRuneInString(l.src[:l.off])
	return l.errorAt(l.start, "unexpected character %s%s", strconv.QuoteRune(r), what)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_'
}
func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

// lexAny skips blanks and dispatches on the first byte of a token.
func lexAny(l *lexer) stateFn {
	for l.off < len(l.src) {
		switch l.src[l.off] {
		case ' ', '\t', '\r':
			l.off++
			l.col++
			continue
		case '\n':
			l.off++
			l.line++
			l.col = 1
			continue
		}
		break
	}
	l.start = l.pos
	if l.off >= len(l.src) {
		return l.emit(tokEOF, "")
	}
	c := l.src[l.off]
	switch {
	case c == '"':
		return lexString
	case c == '/' && strings.HasPrefix(l.src[l.off:], "//"):
		return lexComment
	case c == '/' || c == '#':
		return l.runeErr(" (comments start with //)")
	case isDigit(c):
		return lexTime
	case isIdentStart(c):
		return lexIdent
	}
	k := strings.IndexByte(puncts, c)
	if k < 0 {
		return l.runeErr("")
	}
	l.off++
	l.col++
	return l.emit(tokEquals+tokKind(k), "")
}

// lexComment skips a // comment, still checking it is NUL-free UTF-8.
func lexComment(l *lexer) stateFn {
	rest := l.src[l.off:]
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	if utf8.ValidString(rest) && strings.IndexByte(rest, 0) < 0 {
		l.off += len(rest)
		l.col += utf8.RuneCountInString(rest)
		return lexAny
	}
	// Slow path, only to find where the bad byte is.
	for l.off < len(l.src) && l.src[l.off] != '\n' {
		if !l.step() {
			return nil
		}
	}
	return lexAny
}

// lexString scans a double-quoted string, which may span lines as in the
// original. Only \" and \\ are escapes.
func lexString(l *lexer) stateFn {
	l.step() // opening quote
	segStart := l.off
	var b *strings.Builder // nil until the first escape: most strings are slices of src
	for {
		// Plain ASCII runs, the common case, need only a column count.
		i := l.off
		for i < len(l.src) && plainStringByte[l.src[i]] {
			i++
		}
		l.col += i - l.off
		l.off = i
		if l.off >= len(l.src) {
			return l.errorAt(l.start, "string opened at line %d is never closed: add its closing '\"'", l.start.line)
		}
		switch l.src[l.off] {
		case '"':
			s := l.src[segStart:l.off]
			if b != nil {
				b.WriteString(s)
				s = b.String()
			}
			l.off++
			l.col++
			return l.emit(tokString, s)
		case '\\':
			esc := l.pos
			if b == nil {
				b = new(strings.Builder)
			}
			b.WriteString(l.src[segStart:l.off])
			l.off++
			l.col++
			if l.off >= len(l.src) {
				return l.errorAt(l.start, "string opened at line %d is never closed: add its closing '\"'", l.start.line)
			}
			if c := l.src[l.off]; c != '"' && c != '\\' {
				if !l.step() {
					return nil
				}
				r, _ := utf8.DecodeLastRuneInString(l.src[:l.off])
				return l.errorAt(esc, "invalid escape '\\%s' in string: only \\\" and \\\\ are allowed", strings.Trim(strconv.QuoteRune(r), "'"))
			}
			segStart = l.off // the escaped byte starts the next segment
			l.off++
			l.col++
		default:
			if !l.step() {
				return nil
			}
		}
	}
}

// plainStringByte marks ASCII other than '"', '\\', newline and NUL.
var plainStringByte = func() (t [256]bool) {
	for c := 1; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '\n'
	}
	return t
}()

// lexTime scans [0-9]+[smhd] and computes its duration, rejecting overflow.
func lexTime(l *lexer) stateFn {
	begin := l.off
	var n int64
	overflow := false
	for l.off < len(l.src) && isDigit(l.src[l.off]) {
		d := int64(l.src[l.off] - '0')
		if n > (math.MaxInt64-d)/10 {
			overflow = true
		} else {
			n = n*10 + d
		}
		l.off++
		l.col++
	}
	var unit time.Duration
	if l.off < len(l.src) {
		switch l.src[l.off] {
		case 's':
			unit = time.Second
		case 'm':
			unit = time.Minute
		case 'h':
			unit = time.Hour
		case 'd':
			unit = 24 * time.Hour
		}
	}
	if unit != 0 {
		l.off++
		l.col++
	}
	// Swallow the rest of a word such as 15ms, which is then refused whole;
	// 1.5m is refused at its '.'.
	bad := l.off < len(l.src) && (isIdentChar(l.src[l.off]) || l.src[l.off] == '.')
	for l.off < len(l.src) && isIdentChar(l.src[l.off]) {
		l.off++
		l.col++
	}
	switch {
	case bad:
		return l.errorAt(l.start, "a time is a whole number followed by s, m, h or d, such as 90s for 1.5m (strings need double quotes)")
	case unit == 0:
		return l.errorAt(l.start, "a time needs a unit: s, m, h or d (strings need double quotes)")
	case overflow || n > int64(math.MaxInt64/unit):
		return l.errorAt(l.start, "time too large (the maximum is about 292 years)")
	}
	l.tok = token{kind: tokTime, pos: l.start, val: l.src[begin:l.off], dur: time.Duration(n) * unit}
	return nil
}

// lexIdent scans an identifier or the keyword `none`.
func lexIdent(l *lexer) stateFn {
	begin := l.off
	for l.off < len(l.src) && isIdentChar(l.src[l.off]) {
		l.off++
		l.col++
	}
	word := l.src[begin:l.off]
	if word == "none" {
		return l.emit(tokNone, word)
	}
	return l.emit(tokIdent, word)
}
