package main

// Text that crosses a trust boundary. A provider, a browser, a client or a
// configuration file can put anything in a string that pizauth later shows
// a person: in a log line read by other users, a terminal, an error message
// a mail program displays, or a hook's environment. One rule, applied at
// every edge, keeps such text to one inert line of bounded length.

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// clean makes text from outside fit to show: invalid UTF-8 becomes U+FFFD;
// every run of spaces and of control, format, bidi or line-separator
// characters (Unicode Cc, Cf, Zl, Zp, Zs and the like) becomes one space, so
// nothing can start a line, move a cursor, reorder what is displayed or hide
// text; and the result is cut to at most max bytes by cut.
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

// cut shortens s to at most n bytes, ending at a character boundary and
// marked by "…", so that a message quoting s stays readable and never ends
// in half a UTF-8 sequence.
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

// vschar reports whether s consists of RFC 6749 Appendix A VSCHARs
// (%x20-7E), the characters of tokens, codes and user codes. A token with a
// newline could forge lines in an IMAP or SMTP exchange when `pizauth show`
// hands it to a mail program, so such a token is refused wherever it comes
// from: a token endpoint or a dump.
func vschar[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
