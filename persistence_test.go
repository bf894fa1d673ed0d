package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPersistenceRecipe runs the README's save and restore recipe exactly as
// written, with the real age, and hooks run by dash (Debian's /bin/sh, what
// pizauth uses when SHELL is unset): tokens saved by token_event_cmd survive
// a restart through startup_cmd, and no failure (a dump while no server
// answers, a restore that cannot decrypt, an age that cannot encrypt) ever
// replaces the last good save.
func TestPersistenceRecipe(t *testing.T) {
	t.Parallel()
	needProgram(t, "age", "age")
	needProgram(t, "age-keygen", "age")
	bash := needProgram(t, "bash", "bash")
	recipe := readmeSnippet(t, "persistence")
	startCmd, eventCmd := recipeCommand(t, recipe, "startup_cmd"), recipeCommand(t, recipe, "token_event_cmd")
	if by := readmeSnippet(t, "restore-by-hand"); by != "pizauth server && "+startCmd+"\n" {
		t.Errorf("README.md's restore by hand is not `pizauth server && ` and startup_cmd's command:\n%s", by)
	}
	for _, f := range []string{"examples/pizauth.conf", "pizauth.1"} {
		for _, line := range strings.Split(strings.TrimSpace(recipe), "\n") {
			if !strings.Contains(e2eRead(f), line) {
				t.Errorf("%s does not have the README's recipe line %s", f, line)
			}
		}
	}

	p := newFakeProvider(t)
	c := p.addClient(fakeClient{})
	s := newSrvEnv(t, e2eConf(nil, recipe, p.account("acct", c, "")))
	// Hooks run with /bin/sh when SHELL is unset; make sure that is dash.
	var env []string
	for _, kv := range integrationEnv(s) {
		if !strings.HasPrefix(kv, "SHELL=") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	if sh, _ := filepath.EvalSymlinks("/bin/sh"); !strings.HasSuffix(sh, "dash") {
		env = append(env, "SHELL="+needProgram(t, "dash", "dash"))
	}
	// A bash on PATH that runs the real one and records how each run of the
	// recipe ended, so the test knows when a hook has finished.
	wrapDir := filepath.Join(s.root, "wrap")
	runLog := filepath.Join(s.root, "recipe-runs")
	wrapper := fmt.Sprintf("#!/bin/sh\n%q \"$@\"\nst=$?\ncase \"$*\" in *'pizauth restore'*) k=restore ;; *) k=save ;; esac\necho \"$k $st\" >> %q\nexit $st\n", bash, runLog)
	writeFile(t, filepath.Join(wrapDir, "bash"), wrapper)
	os.Chmod(filepath.Join(wrapDir, "bash"), 0o755)
	env = append(env, "PATH="+wrapDir+string(os.PathListSeparator)+filepath.Dir(e2eBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	s.env = env

	if out, errOut, err := runProgram(t, env, "", "sh", "-c", readmeSnippet(t, "age-keys")); err != nil {
		t.Fatalf("making the age key as the README says: %v\n%s%s", err, out, errOut)
	}
	cache := filepath.Join(s.home, ".cache")
	save, marker := filepath.Join(cache, "pizauth.age"), filepath.Join(cache, "pizauth.restored")
	runs := func() []string { return e2eLines(runLog) }
	// waitRun waits for the recipe's next run after the first n and checks
	// how it ended.
	waitRun := func(n int, want string) {
		t.Helper()
		s.waitFor(t, func() bool { return len(runs()) > n }, "the recipe to run ("+want+")")
		if got := runs()[n]; got != want {
			t.Fatalf("recipe run %d ended %q, want %q (runs %q)", n+1, got, want, runs())
		}
	}
	saved := func() []byte {
		b, err := os.ReadFile(save)
		if err != nil {
			t.Fatalf("no save: %v", err)
		}
		return b
	}
	restart := func() {
		s.exited = make(chan struct{})
		s.start(t)
	}

	// First start: nothing to restore, so saving starts at once.
	s.start(t)
	waitRun(0, "restore 0")
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("startup_cmd with no save yet left no marker: %v", err)
	}
	tok1 := s.authorise(t, "acct")
	waitRun(1, "save 0")
	save1 := saved()
	s.mustRun(t, "refresh", "acct")
	tok2 := s.waitToken(t, "acct", tok1)
	waitRun(2, "save 0")
	save2 := saved()
	if bytes.Equal(save1, save2) {
		t.Fatalf("the save did not change when the token was refreshed")
	}
	s.stop()

	// No server answers: the dump fails, under dash and under fish alike,
	// and the save must stay as it was.
	shells := [][]string{{"/bin/sh", "-c", eventCmd}}
	if fish, err := exec.LookPath("fish"); err == nil {
		shells = append(shells, []string{fish, "--no-config", "-c", eventCmd})
	}
	for _, sh := range shells {
		n := len(runs())
		if _, _, err := runProgram(t, append(env, "PIZAUTH_ACCOUNT=acct", "PIZAUTH_EVENT=token_refreshed"), "", sh[0], sh[1:]...); err == nil {
			t.Errorf("%s: token_event_cmd succeeded with no server", sh[0])
		}
		waitRun(n, "save 1")
		if !bytes.Equal(saved(), save2) {
			t.Fatalf("%s: a failed dump replaced the save", sh[0])
		}
	}

	// Restart: startup_cmd restores the last token, and its refresh token
	// is the live, rotated one: the provider accepts it.
	n := len(runs())
	restart()
	waitRun(n, "restore 0")
	if tok := s.showToken(t, "acct"); tok != tok2 {
		t.Fatalf("after the restart pizauth show printed another token than the last one saved")
	}
	s.mustRun(t, "refresh", "acct")
	tok3 := s.waitToken(t, "acct", tok2)
	waitRun(n+1, "save 0")
	save3 := saved()
	s.stop()

	// A restore that fails (the key is gone) must not let the next token
	// event overwrite the save holding every account's tokens.
	key := filepath.Join(s.home, ".config", "age", "key.txt")
	if err := os.Rename(key, key+".away"); err != nil {
		t.Fatal(err)
	}
	n = len(runs())
	restart()
	waitRun(n, "restore 1")
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("the marker survived a failed restore")
	}
	tok4 := s.authorise(t, "acct")
	if tok4 == tok3 {
		t.Fatalf("the failed restore restored a token")
	}
	waitRun(n+1, "save 1")
	if !bytes.Equal(saved(), save3) {
		t.Fatalf("a token event after a failed restore replaced the save")
	}

	// Told to save from now on, as the README says, it saves again.
	if out, errOut, err := runProgram(t, env, "", "sh", "-c", "touch ~/.cache/pizauth.restored"); err != nil {
		t.Fatalf("touch: %v %s%s", err, out, errOut)
	}
	s.mustRun(t, "refresh", "acct")
	tok5 := s.waitToken(t, "acct", tok4)
	waitRun(n+2, "save 0")
	save4 := saved()
	if bytes.Equal(save4, save3) {
		t.Fatalf("the save did not change once the marker was made by hand")
	}

	// age cannot encrypt (the recipients file is damaged): the save stays.
	recipients := filepath.Join(s.home, ".config", "age", "recipients.txt")
	good := e2eRead(recipients)
	writeFile(t, recipients, "not a recipient\n")
	s.mustRun(t, "refresh", "acct")
	s.waitToken(t, "acct", tok5)
	waitRun(n+3, "save 1")
	if !bytes.Equal(saved(), save4) {
		t.Fatalf("a failed age replaced the save")
	}
	writeFile(t, recipients, good)
	if _, err := os.Stat(save + ".new"); err == nil {
		t.Logf("a failed save left %s.new behind (harmless: never restored)", save)
	}
}

// recipeCommand returns the shell command of one setting in the README's
// recipe, its config string unquoted.
func recipeCommand(t *testing.T, recipe, setting string) string {
	t.Helper()
	for _, line := range strings.Split(recipe, "\n") {
		if v, ok := strings.CutPrefix(line, setting+` = "`); ok {
			v, ok = strings.CutSuffix(v, `";`)
			if ok {
				return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(v)
			}
		}
	}
	t.Fatalf("README.md's recipe has no %s line:\n%s", setting, recipe)
	return ""
}
