package main

// Text from a provider, a browser or a client, on its way to a log, a
// terminal, a dialog or a hook: one rule keeps it one inert, bounded line.

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// clean makes outside text fit to show: invalid UTF-8 becomes U+FFFD, each
// run of spaces and control, format, bidi or separator characters one
// space (nothing can start a line, move a cursor, reorder or hide text),
// and the result is cut to max bytes.
func clean(s string, max int) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r) // RuneError for invalid UTF-8
		if b.Len() > max {
			break
		}
	}
	return cut(b.String(), max)
}

// cut shortens s to at most n bytes, at a character boundary, marked "…".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:max(n, 0)] + "…"
}

// redact replaces every occurrence of each secret, raw or URL-encoded, by
// "[redacted]": providers echo request parameters in error descriptions.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		s = strings.ReplaceAll(s, sec, "[redacted]")
		if enc := url.QueryEscape(sec); enc != sec {
			s = strings.ReplaceAll(s, enc, "[redacted]")
		}
		if enc := url.PathEscape(sec); enc != sec {
			s = strings.ReplaceAll(s, enc, "[redacted]")
		}
	}
	return s
}

// vschar reports whether s is RFC 6749's VSCHARs (%x20-7E). A token with a
// newline could forge lines in an IMAP or SMTP exchange, so one is refused
// from a token endpoint or a dump alike.
func vschar[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
