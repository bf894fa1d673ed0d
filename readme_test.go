package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The integration tests configure the mail programs with the snippets that
// README.md gives users, read from the README itself: a fenced block right
// after a `<!-- snippet: NAME -->` line. Only host names, ports and paths
// are changed, by fillSnippet, which fails when the text it replaces is no
// longer there, so the README and the tests cannot drift apart.

var snippetPlaceholder = regexp.MustCompile(`<[a-z][a-z-]*>`)

// readmeSnippet returns the body of the fenced block marked NAME in
// README.md.
func readmeSnippet(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- snippet: " + name + " -->\n"
	_, rest, ok := strings.Cut(string(b), marker)
	if !ok {
		t.Fatalf("README.md has no %q marker", strings.TrimSpace(marker))
	}
	fence, body, ok := strings.Cut(rest, "\n")
	if !ok || !strings.HasPrefix(fence, "```") {
		t.Fatalf("README.md: the %s marker is not followed by a fenced block", name)
	}
	body, _, ok = strings.Cut(body, "```\n")
	if !ok {
		t.Fatalf("README.md: the %s block is not closed", name)
	}
	return body
}

// fillSnippet replaces, in order, each old text with its new text. Every
// old text must occur, and no <placeholder> may remain.
func fillSnippet(t *testing.T, name, snippet string, oldNew ...string) string {
	t.Helper()
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !strings.Contains(snippet, oldNew[i]) {
			t.Fatalf("README.md's %s snippet no longer contains %q, which the test replaces with %q:\n%s", name, oldNew[i], oldNew[i+1], snippet)
		}
		snippet = strings.ReplaceAll(snippet, oldNew[i], oldNew[i+1])
	}
	if p := snippetPlaceholder.FindString(snippet); p != "" {
		t.Fatalf("README.md's %s snippet has %s, which the test does not fill in:\n%s", name, p, snippet)
	}
	return snippet
}

// TestREADMESnippetsAreTested checks that every marked README snippet is
// one a test reads: a marker with no test behind it would claim a tested
// snippet that nobody runs.
func TestREADMESnippetsAreTested(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{
		"msmtp": true, "mbsync": true, "getmail": true, "neomutt": true,
		"curl-imap": true, "curl-http": true,
		"age-keys": true, "persistence": true, "restore-by-hand": true,
	}
	for _, m := range regexp.MustCompile(`<!-- snippet: (\S+) -->`).FindAllStringSubmatch(string(b), -1) {
		if !tested[m[1]] {
			t.Errorf("README.md marks a snippet %q that no test reads", m[1])
		}
		delete(tested, m[1])
		readmeSnippet(t, m[1])
	}
	for name := range tested {
		t.Errorf("README.md has no %q snippet, which a test reads", name)
	}
}
