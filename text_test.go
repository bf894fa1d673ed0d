package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// clean is the one rule for outside text shown to a person: no C0 or C1
// control, no format or bidi character, no line separator survives, runs of
// them become one space, and the length bound cuts at a character boundary.
func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"a\nb\r\nc\td", "a b c d"},
		{"CSI \u009b31m red", "CSI 31m red"},
		{"NEL\u0085here", "NEL here"},
		{"line\u2028para\u2029end", "line para end"},
		{"evil\u202egnp.exe", "evil gnp.exe"},
		{"zero\u200bwidth\ufeffbom", "zero width bom"},
		{"esc \x1b[2J clear", "esc [2J clear"},
		{"\x00\x01lead and trail\x7f\u0085", "lead and trail"},
		{"bad \xff utf8", "bad \ufffd utf8"},
		{"héllo wörld", "héllo wörld"},
	} {
		if got := clean(tc.in, 100); got != tc.want {
			t.Errorf("clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 1000) + "\u202e"
	got := clean(long, 301)
	if len(got) > 301 || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("clean of 1000 é to 301 bytes: %d bytes, valid %v, %q…", len(got), utf8.ValidString(got), got[:20])
	}
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefg…"},
		{"ééééé", 8, "éé…"},
		{"日本語テキスト", 10, "日本…"},
		{"abc", 2, "…"},
	} {
		got := cut(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("cut(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
