package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects log output written from several goroutines. When
// flush is set, String calls it first: the logger writes asynchronously.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	flush func()
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	if s.flush != nil {
		s.flush()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// captureLog sends the server log at level lvl to a buffer for one test.
func captureLog(t *testing.T, lvl int) *syncBuffer {
	t.Helper()
	buf := &syncBuffer{flush: func() { lg.flush(5 * time.Second) }}
	t.Cleanup(swapLog(buf, lvl))
	return buf
}

// swapLog sends the server log at level lvl to w, once the lines already
// queued have gone to the old output, and returns what undoes it.
func swapLog(w io.Writer, lvl int) (restore func()) {
	lg.flush(5 * time.Second)
	lg.mu.Lock()
	oldW, oldSys := lg.w, lg.sys
	lg.mu.Unlock()
	oldLvl := int(lg.level.Load())
	lg.setOutput(w, nil)
	lg.setLevel(lvl)
	return func() {
		lg.flush(5 * time.Second)
		lg.setOutput(oldW, oldSys)
		lg.setLevel(oldLvl)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// processGone reports whether pid has exited. A killed process reparented to
// a PID 1 that does not reap (as in some containers) stays a zombie, which
// kill(pid, 0) still finds, so on Linux a zombie counts as gone.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// waitGone polls briefly for pid to exit, killing it at the end so that a
// failing test leaves nothing behind.
func waitGone(t *testing.T, pid int) bool {
	t.Helper()
	for range 200 {
		if processGone(pid) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	return false
}

// readPid reads a pid a hook wrote to path.
func readPid(t *testing.T, path string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, path)))
	if err != nil {
		t.Fatalf("hook did not record its background pid: %v", err)
	}
	return pid
}

func TestRunHookEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	t.Setenv("PIZAUTH_TEST_INHERITED", "inherited")
	t.Setenv("PIZAUTH_URL", "stale value from the server's environment")
	code, err := runHook(context.Background(), "auth_notify_cmd",
		`printf '%s|%s|%s' "$PIZAUTH_ACCOUNT" "$PIZAUTH_URL" "$PIZAUTH_TEST_INHERITED" > "$OUT"`,
		[]string{"PIZAUTH_ACCOUNT=acct", "PIZAUTH_URL=https://example.com/auth?x=1", "OUT=" + out}, time.Second)
	if code != 0 || err != nil {
		t.Fatalf("runHook = %d, %v; want 0, nil", code, err)
	}
	if got, want := readFile(t, out), "acct|https://example.com/auth?x=1|inherited"; got != want {
		t.Errorf("hook saw %q, want %q", got, want)
	}
}

func TestRunHookStdinIsDevNull(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, err := runHook(context.Background(), "startup_cmd", `cat > "$OUT"`, []string{"OUT=" + out}, 5*time.Second)
	if code != 0 || err != nil {
		t.Fatalf("runHook = %d, %v; want 0, nil", code, err)
	}
	if got := readFile(t, out); got != "" {
		t.Errorf("hook read %q from stdin, want nothing", got)
	}
}

func TestRunHookShell(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	wrapper := filepath.Join(dir, "myshell")
	script := "#!/bin/sh\necho used > '" + marker + "'\nexec /bin/sh \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHELL", wrapper)
	if code, err := runHook(context.Background(), "startup_cmd", "exit 0", nil, time.Second); code != 0 || err != nil {
		t.Fatalf("with SHELL=%s: runHook = %d, %v", wrapper, code, err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("$SHELL was not used: %v", err)
	}

	for _, shell := range []string{"/bin/sh", ""} {
		t.Setenv("SHELL", shell)
		if code, err := runHook(context.Background(), "startup_cmd", "exit 4", nil, time.Second); code != 4 {
			t.Errorf("with SHELL=%q: runHook = %d, %v; want 4", shell, code, err)
		}
	}
	os.Unsetenv("SHELL")
	if code, err := runHook(context.Background(), "startup_cmd", "exit 5", nil, time.Second); code != 5 {
		t.Errorf("with SHELL unset: runHook = %d, %v; want 5", code, err)
	}

	t.Setenv("SHELL", filepath.Join(dir, "no-such-shell"))
	if code, err := runHook(context.Background(), "startup_cmd", "exit 0", nil, time.Second); code != -1 || err == nil {
		t.Errorf("with a missing $SHELL: runHook = %d, %v; want -1 and an error", code, err)
	}
}

func TestRunHookExitCodeAndLog(t *testing.T) {
	logs := captureLog(t, lvlWarn)
	code, err := runHook(context.Background(), "auth_notify_cmd", "exit 3",
		[]string{"PIZAUTH_ACCOUNT=work", "PIZAUTH_URL=https://example.com/very-private-path"}, time.Second)
	if code != 3 || err == nil {
		t.Fatalf("runHook = %d, %v; want 3 and an error", code, err)
	}
	l := logs.String()
	for _, want := range []string{"WARN", "auth_notify_cmd", "'work'", "status 3"} {
		if !strings.Contains(l, want) {
			t.Errorf("log %q does not mention %q", l, want)
		}
	}
	if strings.Contains(l, "very-private-path") || strings.Contains(err.Error(), "very-private-path") {
		t.Errorf("PIZAUTH_URL leaked into the log or error: %q / %q", l, err)
	}

	if code, err := runHook(context.Background(), "error_notify_cmd", "true", nil, time.Second); code != 0 || err != nil {
		t.Errorf("successful hook: runHook = %d, %v; want 0, nil", code, err)
	}
	if code, err := runHook(context.Background(), "error_notify_cmd", "", nil, time.Second); code != 0 || err != nil {
		t.Errorf("empty hook: runHook = %d, %v; want 0, nil", code, err)
	}
}

func TestRunHookTimeoutKillsProcessGroup(t *testing.T) {
	logs := captureLog(t, lvlWarn)
	pidfile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	// The shell's background sleep holds stdout open and ignores nothing:
	// only a kill of the whole group stops it.
	code, err := runHook(context.Background(), "token_event_cmd",
		`sleep 30 & echo $! > "$PIDFILE"; wait`,
		[]string{"PIZAUTH_ACCOUNT=acct", "PIDFILE=" + pidfile}, 300*time.Millisecond)
	elapsed := time.Since(start)
	if code != -1 || err == nil {
		t.Fatalf("runHook = %d, %v; want -1 and an error", code, err)
	}
	// Not a speed test: the hook would otherwise run for 30 s.
	if elapsed > 10*time.Second {
		t.Errorf("runHook took %v to return after a 300ms timeout", elapsed)
	}
	if !strings.Contains(err.Error(), "killed after 300ms timeout") {
		t.Errorf("error %q does not say it timed out", err)
	}
	if l := logs.String(); !strings.Contains(l, "token_event_cmd for account 'acct' killed after 300ms timeout") {
		t.Errorf("log %q does not report the timeout", l)
	}
	if pid := readPid(t, pidfile); !waitGone(t, pid) {
		t.Errorf("background process %d of the hook survived its timeout", pid)
	}
}

func TestRunHookCancelKillsProcessGroup(t *testing.T) {
	captureLog(t, lvlError)
	pidfile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		code, err := runHook(ctx, "startup_cmd", `(sleep 30; :) & echo $! > "$PIDFILE"; sleep 30`,
			[]string{"PIDFILE=" + pidfile}, 0)
		res <- result{code, err}
	}()
	for range 500 {
		if b, _ := os.ReadFile(pidfile); len(b) > 0 && b[len(b)-1] == '\n' {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	r := <-res
	if r.code != -1 || r.err == nil {
		t.Fatalf("runHook = %d, %v; want -1 and an error", r.code, r.err)
	}
	if pid := readPid(t, pidfile); !waitGone(t, pid) {
		t.Errorf("background process %d of the hook survived cancellation", pid)
	}
	if code, err := runHook(ctx, "startup_cmd", "true", nil, 0); code != -1 || err == nil {
		t.Errorf("with a cancelled context: runHook = %d, %v; want -1 and an error", code, err)
	}
}

// A hook that leaves a daemon behind holding its stdout must not make the
// server wait for that daemon: stdout is a descriptor, not a pipe to drain.
func TestRunHookDetachedGrandchildDoesNotBlock(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	oldStderr := os.Stderr
	os.Stderr = w
	defer func() { os.Stderr = oldStderr; w.Close() }()

	pidfile := filepath.Join(t.TempDir(), "pid")
	code, err := runHook(context.Background(), "auth_notify_cmd",
		`sleep 30 & echo $! > "$PIDFILE"; echo started; exit 0`,
		[]string{"PIDFILE=" + pidfile}, 0)
	if code != 0 || err != nil {
		t.Fatalf("runHook = %d, %v; want 0, nil", code, err)
	}
	pid := readPid(t, pidfile)
	defer syscall.Kill(pid, syscall.SIGKILL)
	if processGone(pid) {
		t.Errorf("a hook that exits normally should keep its background process %d", pid)
	}
	buf := make([]byte, 64)
	n, _ := r.Read(buf)
	if got := string(buf[:n]); got != "started\n" {
		t.Errorf("hook stdout reached the server's stderr as %q, want %q", got, "started\n")
	}
}

func TestStartHook(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	startHook("error_notify_cmd", `printf '%s: %s' "$PIZAUTH_ACCOUNT" "$PIZAUTH_MSG" > "$OUT.tmp" && mv "$OUT.tmp" "$OUT"`,
		[]string{"PIZAUTH_ACCOUNT=a", "PIZAUTH_MSG=refresh failed", "OUT=" + out}, time.Second)
	for range 500 {
		if b, err := os.ReadFile(out); err == nil {
			if got := string(b); got != "a: refresh failed" {
				t.Errorf("hook wrote %q", got)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("startHook never ran the command")
}

// eventHook appends start and end markers around a short random sleep and
// detects overlap with an atomic mkdir lock.
const eventHook = `mkdir "$DIR/lock" 2>/dev/null || echo OVERLAP >> "$DIR/log"
echo "start $PIZAUTH_ACCOUNT $PIZAUTH_EVENT" >> "$DIR/log"
sleep 0.0$(( $$ % 3 ))
echo "end $PIZAUTH_ACCOUNT $PIZAUTH_EVENT" >> "$DIR/log"
rmdir "$DIR/lock"`

func TestEventQueueOrderedOneAtATime(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DIR", dir)
	q := newEventQueue(func() string { return eventHook })
	defer q.close(time.Second)
	var want []string
	events := []string{"token_new", "token_refreshed", "token_invalidated", "token_revoked"}
	for i := range 12 {
		acct, ev := fmt.Sprintf("acct%d", i%3), events[i%4]
		q.push(acct, ev)
		want = append(want, "start "+acct+" "+ev, "end "+acct+" "+ev)
	}
	q.wait()
	got := strings.Split(strings.TrimSpace(readFile(t, filepath.Join(dir, "log"))), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events ran as\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEventQueueReadsCmdAtRunTime(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	t.Setenv("OUT", out)
	var mu sync.Mutex
	cmd := ""
	setCmd := func(s string) { mu.Lock(); cmd = s; mu.Unlock() }
	q := newEventQueue(func() string { mu.Lock(); defer mu.Unlock(); return cmd })
	defer q.close(time.Second)

	q.push("a", "token_new") // no token_event_cmd: skipped
	q.wait()
	setCmd(`echo "one $PIZAUTH_ACCOUNT $PIZAUTH_EVENT" >> "$OUT"`)
	q.push("b", "token_refreshed")
	q.wait()
	setCmd(`echo "two $PIZAUTH_ACCOUNT $PIZAUTH_EVENT" >> "$OUT"`)
	q.push("c", "token_revoked")
	q.wait()
	want := "one b token_refreshed\ntwo c token_revoked\n"
	if got := readFile(t, out); got != want {
		t.Errorf("hook output %q, want %q", got, want)
	}
}

func TestEventQueueTimeoutDoesNotStall(t *testing.T) {
	captureLog(t, lvlError)
	out := filepath.Join(t.TempDir(), "out")
	t.Setenv("OUT", out)
	q := newEventQueue(func() string {
		return `if [ "$PIZAUTH_EVENT" = hang ]; then sleep 30; fi; echo "$PIZAUTH_EVENT" >> "$OUT"`
	})
	q.timeout = 200 * time.Millisecond
	defer q.close(time.Second)
	q.push("a", "hang")
	q.push("a", "token_new")
	q.wait()
	if got := readFile(t, out); got != "token_new\n" {
		t.Errorf("hook output %q, want only the event after the hung one", got)
	}
}

func TestEventQueueDropsWhenFull(t *testing.T) {
	logs := captureLog(t, lvlWarn)
	dir := t.TempDir()
	t.Setenv("DIR", dir)
	q := newEventQueue(func() string {
		return `while [ ! -e "$DIR/go" ]; do sleep 0.01; done; echo "$PIZAUTH_EVENT" >> "$DIR/out"`
	})
	q.limit = 2
	defer q.close(time.Second)
	q.push("a", "e1")
	// Wait until the worker has taken e1, so that e2 and e3 fill the queue.
	q.mu.Lock()
	for !q.running {
		q.mu.Unlock()
		time.Sleep(time.Millisecond)
		q.mu.Lock()
	}
	q.mu.Unlock()
	q.push("a", "e2")
	q.push("a", "e3")
	q.push("a", "e4")
	q.push("a", "e5")
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	q.wait()
	if got := readFile(t, filepath.Join(dir, "out")); got != "e1\ne2\ne3\n" {
		t.Errorf("ran %q, want e1 to e3 only", got)
	}
	if l := logs.String(); strings.Count(l, "dropping new events") != 1 {
		t.Errorf("want one warning about dropped events, log is %q", l)
	}
}

func TestEventQueueClose(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	t.Setenv("OUT", out)
	q := newEventQueue(func() string { return `echo "$PIZAUTH_EVENT" >> "$OUT"` })
	q.push("a", "e1")
	q.push("a", "e2")
	q.close(5 * time.Second)
	q.push("a", "e3") // after close: dropped
	q.close(5 * time.Second)
	q.wait()
	if got := readFile(t, out); got != "e1\ne2\n" {
		t.Errorf("ran %q, want the events queued before close", got)
	}
}

func TestEventQueueCloseKillsHungHook(t *testing.T) {
	logs := captureLog(t, lvlWarn)
	pidfile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("PIDFILE", pidfile)
	q := newEventQueue(func() string { return `sleep 30 & echo $! > "$PIDFILE"; wait` })
	q.push("a", "e1")
	q.push("a", "e2")
	for range 500 {
		if b, _ := os.ReadFile(pidfile); len(b) > 0 && b[len(b)-1] == '\n' {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	q.close(100 * time.Millisecond)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("close took %v despite a 100ms grace", elapsed)
	}
	if pid := readPid(t, pidfile); !waitGone(t, pid) {
		t.Errorf("hook process %d survived close", pid)
	}
	if l := logs.String(); !strings.Contains(l, "1 token events dropped") {
		t.Errorf("log %q does not report the dropped event", l)
	}
	q.wait()
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		hookTimeout:            "10s",
		transientHookTimeout:   "3m",
		time.Hour:              "1h",
		90 * time.Minute:       "1h30m",
		200 * time.Millisecond: "200ms",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// wait blocks until every queued event has run and no hook is running.
func (q *eventQueue) wait() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) > 0 || q.running {
		q.cond.Wait()
	}
}
