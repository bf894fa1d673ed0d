package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run the shipped shell completions, rc scripts and Makefile
// checks in the real shells and tools, against hostile input.

// hostileAccounts are account names that a shell must never evaluate.
var hostileAccounts = []string{
	"$(touch PWNED1)",
	"a`touch PWNED2`b",
	"sp ace;touch PWNED3",
	"{x,y}*",
	"it's",
	`back\slash`,
	`say "hi"`,
	"plain",
}

// completionHome makes a HOME whose default config file declares
// hostileAccounts, and returns it; it is also the working directory the
// shells run in, where the PWNED files would appear.
func completionHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	var b strings.Builder
	for _, a := range hostileAccounts {
		fmt.Fprintf(&b, "account %s {\n    client_id = \"c\";\n}\n", confQuote(a))
	}
	if err := os.MkdirAll(filepath.Join(home, ".config"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "pizauth.conf"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// checkNotPwned fails if a completion ran code from an account name.
func checkNotPwned(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "PWNED*"))
	if len(m) > 0 {
		t.Fatalf("completing account names ran code from them: %v created", m)
	}
}

// runShell runs a shell script in dir with HOME=dir and returns stdout.
func runShell(t *testing.T, dir string, shell string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout: %s\nstderr: %s", shell, args, err, out.String(), errb.String())
	}
	return out.String()
}

func repoFile(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompletionBashAccountNamesAreData(t *testing.T) {
	bash := needProgram(t, "bash", "bash")
	home := completionHome(t)
	// Completes each line as bash does on TAB, then prints every reply
	// and, on the next line, the word bash reads back from it.
	script := `source "$1"; shift
for line; do
	read -ra COMP_WORDS <<<"$line"
	[[ $line == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	_pizauth
	echo "[$line]"
	for r in "${COMPREPLY[@]}"; do
		printf 'reply %s\n' "$r"
		eval "set -- $r"
		printf 'means %s\n' "$1"
	done
done`
	out := runShell(t, home, bash, "-c", script, "bash", repoFile(t, "share/completion/pizauth.bash"),
		"pizauth show ", "pizauth -v revoke ", "pizauth refresh sp", "pizauth ", "pizauth discover -", "pizauth show plain ")
	checkNotPwned(t, home)

	sections := map[string][]string{}
	var cur string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if strings.HasPrefix(l, "[") {
			cur = l
			continue
		}
		sections[cur] = append(sections[cur], l)
	}
	want := func(line string, means ...string) {
		t.Helper()
		var got []string
		for _, l := range sections["["+line+"]"] {
			if m, ok := strings.CutPrefix(l, "means "); ok {
				got = append(got, m)
			}
		}
		sort.Strings(got)
		sort.Strings(means)
		if strings.Join(got, "\n") != strings.Join(means, "\n") {
			t.Errorf("completing %q offers words that mean %q, want %q (all: %q)", line, got, means, sections["["+line+"]"])
		}
	}
	want("pizauth show ", hostileAccounts...)
	want("pizauth -v revoke ", hostileAccounts...)
	want("pizauth refresh sp", "sp ace;touch PWNED3")
	want("pizauth show plain ")
	want("pizauth discover -", "-d", "-v")
	want("pizauth ", "discover", "dump", "help", "info", "refresh", "reload", "restore", "revoke", "server", "show", "shutdown", "status", "version")
}

func TestCompletionZshAccountNamesAreData(t *testing.T) {
	zsh := needProgram(t, "zsh", "zsh")
	home := completionHome(t)
	// The completion system's functions are stand-ins that print what
	// they are given: the account list comes from our function, and
	// compadd, which quotes matches itself, receives them as data.
	script := `
_arguments() { [[ $words[2] == show ]] && state=argument || state=command; return 1 }
_describe() { print -rl -- ${(P)4} }
_wanted() { shift 3; "$@" }
compadd() { [[ $1 == -a ]] && print -rl -- "accounts:" ${(P)2} }
words=(pizauth ""); CURRENT=2
source "$1"
words=(pizauth show ""); CURRENT=3
_pizauth_accounts
`
	out := runShell(t, home, zsh, "-f", "-c", script, "zsh", repoFile(t, "share/completion/_pizauth"))
	checkNotPwned(t, home)
	cmds, accts, ok := strings.Cut(out, "accounts:\n")
	if !ok {
		t.Fatalf("zsh completion offered no accounts; output %q", out)
	}
	got := strings.Split(strings.TrimSuffix(accts, "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(hostileAccounts, "\n") {
		t.Errorf("zsh completion gave compadd %q, want %q", got, hostileAccounts)
	}
	if !strings.Contains(cmds, "discover:") {
		t.Errorf("zsh completion does not offer discover; commands %q", cmds)
	}
}

func TestCompletionFishAccountNamesAreData(t *testing.T) {
	fish := needProgram(t, "fish", "fish")
	home := completionHome(t)
	src := repoFile(t, "share/completion/pizauth.fish")
	out := runShell(t, home, fish, "--no-config", "-c",
		"source $argv[1]; complete -C 'pizauth show '; echo ---; complete -C 'pizauth '; echo ---; complete -C 'pizauth discover -'", src)
	checkNotPwned(t, home)
	parts := strings.Split(out, "---\n")
	if len(parts) != 3 {
		t.Fatalf("fish output %q", out)
	}
	names := func(s string) []string {
		var r []string
		for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
			name, _, _ := strings.Cut(l, "\t")
			r = append(r, name)
		}
		sort.Strings(r)
		return r
	}
	want := append([]string(nil), hostileAccounts...)
	sort.Strings(want)
	if got := names(parts[0]); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("fish completes accounts as %q, want %q", got, want)
	}
	if got := names(parts[1]); !strings.Contains(strings.Join(got, " "), "discover dump") {
		t.Errorf("fish completes commands as %q, want discover among them", got)
	}
	if got := names(parts[2]); strings.Join(got, " ") != "-d -v" {
		t.Errorf("fish completes discover's flags as %q, want -d -v", got)
	}
}

// rcHostile are values an administrator's rc.conf could hold, deliberately
// or not, that must reach pizauth as one unchanged argument.
var rcHostile = []string{
	"",
	"plain",
	"it's",
	"''",
	`a'b'c`,
	`"$(touch PWNED)"`,
	"`touch PWNED`",
	"$HOME ${HOME} \\ \\' !x *",
	"new\nline",
	"trailing newline\n",
	"'",
	"; touch PWNED #",
}

// quoteFunc extracts the pizauth_quote function from an rc script.
func quoteFunc(t *testing.T, script string) string {
	t.Helper()
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?ms)^pizauth_quote\(\)\s*\{.*?^\}\n`).Find(b)
	if m == nil {
		t.Fatalf("%s has no pizauth_quote function", script)
	}
	return string(m)
}

func TestRCQuoteHostileValues(t *testing.T) {
	dir := t.TempDir()
	shells := []string{"sh", "bash", "mksh", "ksh"}
	for _, script := range []string{"share/freebsd/rc.d/pizauth", "share/openbsd/rc.d/pizauth"} {
		fn := quoteFunc(t, script)
		for _, sh := range shells {
			path, err := exec.LookPath(sh)
			if err != nil {
				continue
			}
			for _, v := range rcHostile {
				// The quoted word, read back by sh, must be the value.
				prog := fn + `q=$(pizauth_quote "$1"); eval "set -- $q"; printf '%s' "$1"`
				cmd := exec.Command(path, "-c", prog, "sh", v)
				cmd.Dir = dir
				out, err := cmd.Output()
				if err != nil || string(out) != v {
					t.Errorf("%s, %s: pizauth_quote %q read back as %q (%v)", script, sh, v, out, err)
				}
			}
		}
	}
	checkNotPwned(t, dir)
}

// rcNS is a private PID namespace for the rc script tests: the scripts
// find and signal every pizauth server of a user, and in here the only ones
// are the test's, never a developer's own or another test's.
type rcNS struct {
	t    *testing.T
	pid  int // the namespace's init, as seen from outside
	user bool
}

func newRCNS(t *testing.T) *rcNS {
	t.Helper()
	for _, p := range []string{"unshare", "nsenter", "pgrep"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: %s is not installed (util-linux, procps)", p)
		}
	}
	n := &rcNS{t: t, user: os.Getuid() != 0}
	args := []string{"--pid", "--fork", "--mount-proc"}
	if n.user {
		args = append([]string{"--user", "--map-root-user"}, args...)
	}
	cmd := exec.Command("unshare", append(args, "sleep", "600")...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Skipf("skipping: can't make a PID namespace: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Killing the namespace's init kills everything in it.
		if n.pid != 0 {
			syscall.Kill(n.pid, syscall.SIGKILL)
		}
		cmd.Process.Kill()
		<-exited
	})
	children := fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for n.pid == 0 {
		select {
		case <-exited:
			t.Skipf("skipping: can't make a PID namespace: %s", errb.String())
		default:
		}
		if b, _ := os.ReadFile(children); len(bytes.TrimSpace(b)) > 0 {
			n.pid, _ = strconv.Atoi(strings.Fields(string(b))[0])
		} else if time.Now().After(deadline) {
			t.Fatal("the PID namespace's init did not start")
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if _, errOut, code := n.run(nil, "true"); code != 0 {
		t.Skipf("skipping: can't enter the PID namespace: %s", errOut)
	}
	return n
}

// run runs args inside the namespace with environment env.
func (n *rcNS) run(env []string, args ...string) (stdout, stderr string, code int) {
	n.t.Helper()
	ns := []string{"-t", strconv.Itoa(n.pid), "-p", "-m"}
	if n.user {
		ns = append(ns, "-U", "--preserve-credentials")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append(append(ns, "--"), args...)...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code == 0 {
		code = -1
	}
	return out.String(), errb.String(), code
}

// servers returns the pids, inside the namespace, of running pizauth
// servers (not zombies: the namespace's init does not reap them).
func (n *rcNS) servers() []int {
	n.t.Helper()
	out, _, _ := n.run(nil, "pgrep", "-f", "(^|/)pizauth server( |$)")
	var pids []int
	for _, f := range strings.Fields(out) {
		p, _ := strconv.Atoi(f)
		stat, _, _ := n.run(nil, "cat", fmt.Sprintf("/proc/%d/stat", p))
		if i := strings.LastIndexByte(stat, ')'); i >= 0 && strings.HasPrefix(stat[i:], ") Z") {
			continue
		}
		pids = append(pids, p)
	}
	return pids
}

// proc reads /proc/pid/<what> inside the namespace, split at NULs.
func (n *rcNS) proc(pid int, what string) []string {
	n.t.Helper()
	out, _, _ := n.run(nil, "cat", fmt.Sprintf("/proc/%d/%s", pid, what))
	return strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
}

// rcFakes writes the stand-ins the rc scripts are run with: a copy of the
// script that sources stubRCSubr instead of the system's rc.subr and runs
// the test binary, and a directory with a fake su, first on PATH.
func rcFakes(t *testing.T, dir, script, rcSubrPath, stubRCSubr, su string) (rc, bin string) {
	t.Helper()
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), rcSubrPath, filepath.Join(dir, "rc.subr"))
	s = strings.ReplaceAll(s, "/usr/local/bin/pizauth", e2eBin)
	bin = filepath.Join(dir, "bin")
	s = strings.ReplaceAll(s, "/usr/bin/su ", filepath.Join(bin, "su")+" ")
	rc = filepath.Join(dir, "pizauth")
	for name, body := range map[string]string{rc: s, filepath.Join(dir, "rc.subr"): stubRCSubr, filepath.Join(bin, "su"): su} {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return rc, bin
}

// freeBSDRCSubr stands in for FreeBSD's /etc/rc.subr: the helpers the
// script uses, and run_rc_command's order for commands with a _cmd.
const freeBSDRCSubr = `
load_rc_config() { :; }
err() { _c=$1; shift; echo "$0: ERROR: $*" >&2; exit $_c; }
warn() { echo "$0: WARNING: $*" >&2; }
checkyesno() { eval "case \$$1 in [Yy][Ee][Ss]) return 0 ;; esac"; return 1; }
run_rc_command() {
	rc_arg=$1
	if [ "$rc_arg" = restart ]; then
		( run_rc_command stop )
		( run_rc_command start )
		return
	fi
	case $rc_arg in
	stop|status) ;;
	*) checkyesno $rcvar || { echo "Cannot '$rc_arg' $name."; return 0; } ;;
	esac
	eval _cmd=\$${rc_arg}_cmd _precmd=\$${rc_arg}_precmd
	[ -n "$_cmd" ] || { echo "$0: unknown directive '$rc_arg'." >&2; return 1; }
	if [ -n "$_precmd" ] && [ -z "$STUB_SKIP_PRECMD" ]; then
		eval "$_precmd" || return 1
	fi
	eval "$_cmd"
}
`

// freeBSDSu stands in for FreeBSD's su(1) run by root: options, the login,
// then the shell's arguments; with -m the shell is root's own (sh, or csh
// on older systems: @ROOT_SHELL@), which gets -f and -m as FreeBSD's su
// passes them to csh. It does not change user: the namespace's root is the
// test's user. It logs how it was called to su.log beside its directory,
// as the rc script gives it no environment of the test's.
const freeBSDSu = `#!/bin/sh
fast= asme= login=
while getopts flmc: o; do
	case $o in
	f) fast=1 ;;
	l) login=1 ;;
	m) asme=1 ;;
	c) ;;
	*) exit 1 ;;
	esac
done
shift $((OPTIND - 1))
[ "$1" = - ] && { login=1; shift; }
shell=/bin/sh
[ -n "$asme" ] && shell=@ROOT_SHELL@
echo "user=$1 fast=$fast asme=$asme login=$login shell=$shell" >> "${0%/*}/../su.log"
shift
case $shell in
*csh) set -- ${fast:+-f} ${asme:+-m} "$@" ;;
esac
exec "$shell" "$@"
`

// openBSDRCSubr stands in for OpenBSD's /etc/rc.d/rc.subr: rc_cmd with its
// order of rc_check, rc_pre, rc_start and rc_stop, and its wait for
// rc_check to fail after a stop, bounded by daemon_timeout.
const openBSDRCSubr = `
_name=${0##*/}
daemon_class=daemon
daemon_user=$STUB_DAEMON_USER
daemon_timeout=${STUB_DAEMON_TIMEOUT:-30}
[ -n "$STUB_DAEMON_FLAGS" ] && daemon_flags=$STUB_DAEMON_FLAGS
rc_cmd() {
	case $1 in
	check)
		rc_check ;;
	start)
		rc_check && exit 0
		[ -n "$STUB_SKIP_PRECMD" ] || rc_pre || exit 1
		rc_start ;;
	stop)
		rc_check || exit 0
		rc_stop || exit 1
		_i=0
		while [ $_i -lt $daemon_timeout ]; do
			rc_check || exit 0
			sleep 1
			_i=$((_i + 1))
		done
		echo "(failed)"; exit 1 ;;
	reload)
		rc_check && rc_reload ;;
	restart)
		"$STUB_SHELL" "$0" stop && "$STUB_SHELL" "$0" start ;;
	esac
}
`

// openBSDSu stands in for OpenBSD's su(1) run by root: -c class and -s
// shell before the login, the shell's arguments after it; without -l or -m
// it sets HOME, SHELL, USER and LOGNAME and keeps the rest. It logs as
// freeBSDSu does.
const openBSDSu = `#!/bin/sh
shell= login= asme=
while getopts a:c:fKLlms: o; do
	case $o in
	s) shell=$OPTARG ;;
	l) login=1 ;;
	m) asme=1 ;;
	*) ;;
	esac
done
shift $((OPTIND - 1))
[ "$1" = - ] && { login=1; shift; }
echo "user=$1 shell=$shell asme=$asme login=$login" >> "${0%/*}/../su.log"
user=$1; shift
[ -n "$shell" ] || shell=$(getent passwd "$user" | cut -d: -f7)
if [ -z "$asme" ]; then
	export HOME="$(getent passwd "$user" | cut -d: -f6)" SHELL="$shell" USER="$user" LOGNAME="$user"
fi
exec "$shell" "$@"
`

// rcScenario is what differs between the two rc scripts' lifecycle tests.
type rcScenario struct {
	script, rcSubrPath, rcSubr, su string // su: @ROOT_SHELL@ is rootShell
	rootShell                      string
	shell                          string   // runs the script
	status                         string   // the action that reports running
	env                            []string // rc.conf settings and stubs
	wantArgv                       []string // the server's argv after the binary
	wantEnv                        []string // KEY=value pairs the server must have
	wantSu                         string   // how su must be called
}

// testRCLifecycle starts a server with the rc script, revokes a token so
// that a slow token_event_cmd runs, and checks that stop returns only once
// the hook has finished and the server has exited; then restart and the
// not-running answers.
func testRCLifecycle(t *testing.T, ns *rcNS, sc rcScenario, s *srv, marker string) {
	dir := e2eShortDir(t)
	rc, bin := rcFakes(t, dir, sc.script, sc.rcSubrPath, sc.rcSubr, strings.ReplaceAll(sc.su, "@ROOT_SHELL@", sc.rootShell))
	suLog := filepath.Join(dir, "su.log")
	env := append([]string{
		"PATH=" + bin + ":" + os.Getenv("PATH"),
		"STUB_SHELL=" + sc.shell,
		"PIZAUTH_RC_CANARY=must-not-reach-the-server",
	}, sc.env...)
	// In the namespace the test's user is root, whom the scripts (rightly)
	// refuse; TestRCRefusesRoot covers that.
	env = append(env, "STUB_SKIP_PRECMD=1")
	rcRun := func(action string) (string, int) {
		t.Helper()
		out, errOut, code := ns.run(env, sc.shell, rc, action)
		return out + errOut, code
	}

	if out, code := rcRun("start"); code != 0 {
		t.Fatalf("rc start: exit %d, %q", code, out)
	}
	pids := ns.servers()
	if len(pids) != 1 {
		t.Fatalf("after rc start, %d pizauth servers run, want 1", len(pids))
	}
	if out, code := rcRun(sc.status); code != 0 {
		t.Fatalf("rc %s with a server running: exit %d, %q", sc.status, code, out)
	}
	argv := ns.proc(pids[0], "cmdline")
	if len(argv) < 1 || strings.Join(argv[1:], "\x00") != strings.Join(sc.wantArgv, "\x00") {
		t.Errorf("the server runs with arguments %q, want %q", argv[1:], sc.wantArgv)
	}
	environ := ns.proc(pids[0], "environ")
	for _, kv := range sc.wantEnv {
		found := false
		for _, e := range environ {
			found = found || e == kv
		}
		if !found {
			t.Errorf("the server's environment lacks %q: %q", kv, environ)
		}
	}
	for _, e := range environ {
		if strings.HasPrefix(e, "PIZAUTH_RC_CANARY=") || strings.HasPrefix(e, "_PIZAUTH_RC_CMD=") {
			t.Errorf("the server's environment has %q: the rc script must give it a clean one", e)
		}
	}
	log, _ := os.ReadFile(suLog)
	if !strings.Contains(string(log), sc.wantSu+"\n") || strings.Contains(string(log), "login=1") {
		t.Errorf("the rc script ran su as %q, want %q: never a login shell, which runs the user's profile", log, sc.wantSu)
	}
	checkNotPwned(t, dir)

	s.authorise(t, "acct")
	s.mustRun(t, "revoke", "acct")
	if out, code := rcRun("stop"); code != 0 {
		t.Fatalf("rc stop: exit %d, %q", code, out)
	}
	if left := ns.servers(); len(left) != 0 {
		t.Errorf("rc stop returned while the server (pid %v) still ran", left)
	}
	if got := e2eRead(marker); !strings.Contains(got, "acct token_revoked") {
		t.Errorf("rc stop returned before the server's token_event_cmd for the revoke had finished; hook log %q", got)
	}
	if out, code := rcRun(sc.status); code == 0 {
		t.Errorf("rc %s with no server: exit 0, %q", sc.status, out)
	}

	if out, code := rcRun("start"); code != 0 {
		t.Fatalf("rc start again: exit %d, %q", code, out)
	}
	before := ns.servers()
	if out, code := rcRun("restart"); code != 0 {
		t.Fatalf("rc restart: exit %d, %q", code, out)
	}
	after := ns.servers()
	if len(before) != 1 || len(after) != 1 || before[0] == after[0] {
		t.Errorf("rc restart: servers %v before, %v after; want one old one replaced by one new one", before, after)
	}
	if out, code := rcRun("stop"); code != 0 || len(ns.servers()) != 0 {
		t.Errorf("rc stop: exit %d, %q, servers left %v", code, out, ns.servers())
	}
}

// rcEnvSetup is a provider, an installation whose server runs a slow
// token_event_cmd on revocation, and a config file at a hostile path.
//
// That hook runs with the server's own command line, as every hook does
// for a moment under load: between the fork and the exec of the shell, a
// server's child shows the server's command line. An rc script that took
// it for a server would stop it with the server, and with it the hook that
// saves the tokens. Here the moment lasts the whole hook, so a script that
// does so fails every time, not once in a while on a busy machine.
func rcEnvSetup(t *testing.T, confName string) (s *srv, conf, marker string) {
	t.Helper()
	p := newFakeProvider(t)
	c := p.addClient(fakeClient{})
	dir := e2eShortDir(t)
	marker = filepath.Join(dir, "events")
	bash := needProgram(t, "bash", "bash")
	slow := filepath.Join(dir, "slow-hook")
	if err := os.WriteFile(slow, []byte(fmt.Sprintf("sleep 2\necho \"$PIZAUTH_ACCOUNT $PIZAUTH_EVENT\" >> '%s'\n", marker)), 0o644); err != nil {
		t.Fatal(err)
	}
	hook := fmt.Sprintf(`if [ "$PIZAUTH_EVENT" = token_revoked ]; then exec '%s' -c 'exec -a "pizauth server" /bin/sh "$0"' '%s'; fi; echo "$PIZAUTH_ACCOUNT $PIZAUTH_EVENT" >> '%s'`, bash, slow, marker)
	text := e2eConf(map[string]string{"token_event_cmd": confQuote(hook)}, p.account("acct", c, ""))
	s = newSrvEnv(t, text)
	conf = filepath.Join(dir, confName)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, conf, marker
}

// runOut runs a program and returns its stdout.
func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return string(out)
}

// setEnv sets key in s's environment.
func setEnv(s *srv, key, value string) {
	env := s.env[:0]
	for _, kv := range s.env {
		if !strings.HasPrefix(kv, key+"=") {
			env = append(env, kv)
		}
	}
	s.env = append(env, key+"="+value)
}

func TestFreeBSDRCScript(t *testing.T) {
	ns := newRCNS(t)
	user := "root" // in the namespace, whoever runs the test
	home := strings.TrimSpace(runOut(t, "sh", "-c", `getent passwd "$1" | cut -d: -f6`, "sh", user))
	shells := []string{"/bin/sh"}
	for _, csh := range []string{"tcsh", "csh"} {
		if p, err := exec.LookPath(csh); err == nil {
			shells = append(shells, p)
			break
		}
	}
	if len(shells) == 1 {
		t.Log("no tcsh or csh installed: root's shell is tried as sh only")
	}
	for _, rootShell := range shells {
		t.Run(filepath.Base(rootShell), func(t *testing.T) {
			s, conf, marker := rcEnvSetup(t, "it's \"$(touch PWNED)\" `touch PWNED` $HOME !x *\n.conf")
			testRCLifecycle(t, ns, rcScenario{
				script: "share/freebsd/rc.d/pizauth", rcSubrPath: "/etc/rc.subr",
				rcSubr: freeBSDRCSubr, su: freeBSDSu, shell: "/bin/sh", status: "status",
				rootShell: rootShell,
				env: []string{
					"pizauth_enable=YES",
					"pizauth_user=" + user,
					"pizauth_config=" + conf,
					"pizauth_flags=-vv",
					"pizauth_runtime_dir=" + s.runDir,
					"pizauth_stop_timeout=20",
				},
				wantArgv: []string{"server", "-vv", "-c", conf},
				wantSu:   "user=root fast=1 asme=1 login= shell=" + rootShell,
				wantEnv: []string{"HOME=" + home, "USER=" + user, "LOGNAME=" + user,
					"PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin",
					"XDG_RUNTIME_DIR=" + s.runDir},
			}, s, marker)
		})
	}
}

func TestOpenBSDRCScript(t *testing.T) {
	ns := newRCNS(t)
	user := "root" // in the namespace, whoever runs the test
	home := strings.TrimSpace(runOut(t, "sh", "-c", `getent passwd "$1" | cut -d: -f6`, "sh", user))
	shell, err := exec.LookPath("mksh")
	if err != nil {
		// OpenBSD's ksh descends from pdksh, as mksh does; bash runs the
		// script too.
		shell = needProgram(t, "bash", "bash")
	}
	// The flags are split at white space, so the path has none.
	s, conf, marker := rcEnvSetup(t, `it's"$(touch${IFS}PWNED)"`+"`touch${IFS}PWNED`"+`$HOME!x*.conf`)
	// The server's environment has no XDG_RUNTIME_DIR nor TMPDIR, so its
	// socket is under /tmp/runtime-root: in the namespace, that is a
	// directory of the test's, which the test's clients reach by TMPDIR.
	tmp := ns.privateRuntimeDir(t, user)
	setEnv(s, "XDG_RUNTIME_DIR", "")
	setEnv(s, "TMPDIR", tmp)
	setEnv(s, "USER", user)
	testRCLifecycle(t, ns, rcScenario{
		script: "share/openbsd/rc.d/pizauth", rcSubrPath: "/etc/rc.d/rc.subr",
		rcSubr: openBSDRCSubr, su: openBSDSu, shell: shell, status: "check",
		env: []string{
			"STUB_DAEMON_USER=" + user,
			"STUB_DAEMON_FLAGS=-vv -c " + conf,
			"STUB_DAEMON_TIMEOUT=20",
		},
		wantArgv: []string{"server", "-vv", "-c", conf},
		wantSu:   "user=root shell=/bin/sh asme= login=",
		wantEnv: []string{"HOME=" + home, "USER=" + user, "LOGNAME=" + user, "SHELL=/bin/sh",
			"PATH=/usr/bin:/bin:/usr/sbin:/sbin:/usr/X11R6/bin:/usr/local/bin:/usr/local/sbin"},
	}, s, marker)
}

// privateRuntimeDir makes /tmp/runtime-<user>, inside the namespace only, a
// new directory of the test's, and returns the directory that holds it
// outside: a TMPDIR for clients.
func (n *rcNS) privateRuntimeDir(t *testing.T, user string) string {
	t.Helper()
	if n.user {
		// The mount point must exist outside too, and one that a
		// user made would stand in root's way.
		t.Skipf("skipping: mounting over /tmp/runtime-%s needs root", user)
	}
	tmp := e2eShortDir(t)
	dir := filepath.Join(tmp, "runtime-"+user)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// As pizauth would make it for root.
	if err := os.MkdirAll("/tmp/runtime-"+user, 0o700); err != nil {
		t.Skipf("skipping: can't make /tmp/runtime-%s: %v", user, err)
	}
	if _, errOut, code := n.run(nil, "mount", "--bind", dir, "/tmp/runtime-"+user); code != 0 {
		t.Skipf("skipping: can't mount in the namespace: %s", errOut)
	}
	return tmp
}

func TestRCRefusesRoot(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		script, rcSubrPath, rcSubr, su, shell string
		env                                   []string
		want                                  string
	}{
		{"share/freebsd/rc.d/pizauth", "/etc/rc.subr", freeBSDRCSubr, freeBSDSu, "/bin/sh",
			[]string{"pizauth_enable=YES", "pizauth_user=root"}, "must not be root"},
		{"share/freebsd/rc.d/pizauth", "/etc/rc.subr", freeBSDRCSubr, freeBSDSu, "/bin/sh",
			[]string{"pizauth_enable=YES"}, "set pizauth_user"},
		{"share/freebsd/rc.d/pizauth", "/etc/rc.subr", freeBSDRCSubr, freeBSDSu, "/bin/sh",
			[]string{"pizauth_enable=YES", "pizauth_user=no-such-user-pizauth"}, "no such user"},
		{"share/openbsd/rc.d/pizauth", "/etc/rc.d/rc.subr", openBSDRCSubr, openBSDSu, "bash",
			[]string{"STUB_DAEMON_USER=root"}, "rcctl set pizauth user"},
		{"share/openbsd/rc.d/pizauth", "/etc/rc.d/rc.subr", openBSDRCSubr, openBSDSu, "bash",
			[]string{"STUB_DAEMON_USER=no-such-user-pizauth"}, "rcctl set pizauth user"},
	}
	for i, c := range cases {
		d := filepath.Join(dir, strconv.Itoa(i))
		// A su that would show it had been run, and a pgrep that finds
		// nothing, so that nothing here depends on this machine's
		// processes or starts a server.
		rc, bin := rcFakes(t, d, c.script, c.rcSubrPath, c.rcSubr, "#!/bin/sh\necho su was run\nexit 1\n")
		if err := os.WriteFile(filepath.Join(bin, "pgrep"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(c.shell, rc, "start")
		cmd.Env = append([]string{"PATH=" + bin + ":" + os.Getenv("PATH")}, c.env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "su was run") {
			t.Errorf("%s start with %q: %v, %q; want a refusal saying %q", c.script, c.env, err, out, c.want)
		}
	}
}

// checkMan runs `make check-man` with this Makefile on the pages in dir.
func checkMan(t *testing.T, dir string, env []string) (string, error) {
	t.Helper()
	cmd := exec.Command("make", "-s", "-f", repoFile(t, "Makefile"), "check-man")
	cmd.Dir = dir
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCheckManFailsOnRealProblems(t *testing.T) {
	needProgram(t, "mandoc", "mandoc")
	needProgram(t, "make", "make")
	page1, _ := os.ReadFile("pizauth.1")
	page5, _ := os.ReadFile("pizauth.conf.5")
	for _, c := range []struct{ name, add, want string }{
		{"good", "", ""},
		{"wrong reference to our page", ".Xr pizauth.conf 1\n", "referenced manual not found: Xr pizauth.conf 1"},
		{"unknown macro", ".Xx foo\n", "unknown macro"},
		{"trailing space", "A line. \n", "whitespace at end of input line"},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "pizauth.1"), append(append([]byte(nil), page1...), c.add...), 0o644)
		os.WriteFile(filepath.Join(dir, "pizauth.conf.5"), page5, 0o644)
		out, err := checkMan(t, dir, nil)
		if c.want == "" {
			if err != nil {
				t.Errorf("make check-man on our pages: %v\n%s", err, out)
			}
		} else if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("make check-man on our pages with a %s: %v, %q; want a failure saying %q", c.name, err, out, c.want)
		}
	}
}

// A machine whose mandoc.db lacks pages it has (mandoc installed before
// them, or never indexed) makes mandoc -Tlint print "outdated mandoc.db
// lacks msmtp(1) entry": that is the machine's business, not our pages'.
func TestCheckManIgnoresStaleMandocDB(t *testing.T) {
	needProgram(t, "mandoc", "mandoc")
	needProgram(t, "make", "make")
	for _, p := range []string{"unshare", "makewhatis"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: %s is not installed", p)
		}
	}
	// In a private mount namespace, /usr/share/man holds an index made
	// before the pages of two programs our pages refer to were added.
	script := `set -e
mount -t tmpfs none /usr/share/man
page() { mkdir -p /usr/share/man/man$2; printf '.Dd x\n.Dt %s %s\n.Os\n.Sh NAME\n.Nm %s\n.Nd x\n' "$1" "$2" "$1" > /usr/share/man/man$2/$1.$2; }
page grep 1
makewhatis /usr/share/man
page msmtp 1
page age 1
mandoc -Tlint "$1" 2>&1 | grep -q 'outdated mandoc.db lacks' || { echo "could not make a stale mandoc.db"; exit 3; }
exec make -s -f "$2" check-man`
	cmd := exec.Command("unshare", "--mount", "--map-root-user", "sh", "-c", script, "sh", repoFile(t, "pizauth.1"), repoFile(t, "Makefile"))
	if os.Getuid() == 0 {
		cmd.Args = []string{"unshare", "--mount", "sh", "-c", script, "sh", repoFile(t, "pizauth.1"), repoFile(t, "Makefile")}
	}
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code == 3 || (err != nil && strings.Contains(string(out), "unshare")) {
		t.Skipf("skipping: can't make a stale mandoc.db in a private mount namespace: %s", out)
	}
	if err != nil {
		t.Errorf("make check-man on a machine with a stale mandoc.db: %v\n%s", err, out)
	}
}
