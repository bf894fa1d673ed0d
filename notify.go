package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Hook timeouts (SPEC §8). startup_cmd has none: it is passed 0.
const (
	hookTimeout          = 10 * time.Second
	transientHookTimeout = 3 * time.Minute
)

// maxQueuedEvents bounds the token-event queue: a backlog this long means
// token_event_cmd has hung for a day, and dropping beats growing for ever.
const maxQueuedEvents = 10000

// eventQueueDrainTimeout is how long shutdown gives the queued events, the
// last ones a saved dump must not miss, before the rest are dropped.
const eventQueueDrainTimeout = 3 * hookTimeout

// runHook is the one place that runs a user's command: `$SHELL -c cmd`
// (/bin/sh if unset) with the server's environment plus env. It returns the
// exit code (-1: not started or killed) and any failure, also logged.
//
// The shell leads its own process group, all of which gets SIGKILL at the
// timeout (0: none) or when ctx ends: killing only the shell would leave
// `a | b` or a `sleep` running, unreaped. Children deliberately left behind
// by a shell that exits (`notify-send ... &`) are kept.
//
// stdout and stderr are the server's stderr as a descriptor, never a pipe,
// whose copying goroutine a grandchild holding it open would stall (but see
// execHook's stdout, for the one command whose output pizauth reads). stdin
// is /dev/null, and the SIGTTOU serverMain ignores stays ignored, so a hook
// neither reads nor stops on a terminal.
func runHook(ctx context.Context, name, cmd string, env []string, timeout time.Duration) (exitCode int, err error) {
	if cmd == "" {
		return 0, nil
	}
	who := name
	if acct, ok := envValue(env, "PIZAUTH_ACCOUNT"); ok {
		who = fmt.Sprintf("%s for account '%s'", name, acct)
	}
	code, err := execHook(ctx, who, cmd, env, timeout, nil)
	if err != nil {
		logWarn("%s", err)
	}
	return code, err
}

// execHook does runHook's work; who names the hook in messages. A non-nil
// stdout gets the command's standard output instead of the server's stderr.
func execHook(ctx context.Context, who, cmd string, env []string, timeout time.Duration, stdout *secretOutput) (int, error) {
	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("%s not run: cancelled", who)
	}
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	c := exec.Command(shell, "-c", cmd)
	// Later duplicates win in os/exec, so env overrides an inherited
	// PIZAUTH_* variable of the same name.
	c.Env = append(os.Environ(), env...)
	c.Stdout = os.Stderr
	c.Stderr = os.Stderr
	if stdout != nil {
		// os/exec copies the pipe until EOF; WaitDelay stops a grandchild
		// that keeps it open from stalling Wait.
		c.Stdout, c.WaitDelay = stdout, time.Second
	}
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logDebug("running %s", who)
	if err := c.Start(); err != nil {
		return -1, fmt.Errorf("%s couldn't start %s: %v (check $SHELL)", who, shell, err)
	}
	pgid := c.Process.Pid // Setpgid with Pgid 0: the shell leads its group.
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()

	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	var killed error
	select {
	case err := <-done:
		return exitResult(who, c, err)
	case <-expired:
		killed = fmt.Errorf("%s killed after %s timeout", who, shortDuration(timeout))
	case <-ctx.Done():
		killed = fmt.Errorf("%s killed: cancelled", who)
	}
	// The shell has not been reaped (done was not ready), so its pid, and so
	// the group id, cannot belong to anybody else yet.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		logError("couldn't kill process group %d of %s: %v", pgid, who, err)
	}
	<-done
	return -1, killed
}

func exitResult(who string, c *exec.Cmd, err error) (int, error) {
	if err == nil || errors.Is(err, exec.ErrWaitDelay) { // exited 0, a grandchild holds stdout
		logTrace("%s exited with status 0", who)
		return 0, nil
	}
	st := c.ProcessState
	if st == nil {
		return -1, fmt.Errorf("%s: %v", who, err)
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, fmt.Errorf("%s killed by signal %v", who, ws.Signal())
	}
	return st.ExitCode(), fmt.Errorf("%s exited with status %d", who, st.ExitCode())
}

// secretOutput keeps the first maxSecretLine+1 bytes a command prints, a
// line too long to be a secret, and discards the rest.
type secretOutput []byte

func (w *secretOutput) Write(p []byte) (int, error) {
	*w = append(*w, p[:min(len(p), max(maxSecretLine+1-len(*w), 0))]...)
	return len(p), nil
}

// startHook runs a hook whose result nobody acts on, in the background.
func startHook(name, cmd string, env []string, timeout time.Duration) {
	if cmd == "" {
		return
	}
	go runHook(context.Background(), name, cmd, env, timeout)
}

func envValue(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// shortDuration prints 3m rather than time.Duration's 3m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// tokenEvent is one queued run of token_event_cmd.
type tokenEvent struct{ account, event string }

// eventQueue runs token_event_cmd once per event, in order, so a script
// never sees token_revoked overtaken by token_new. push never blocks.
type eventQueue struct {
	cmd     func() string // current token_event_cmd, read per event: reload may change it
	timeout time.Duration // per event; set before the first push (tests shorten it)
	limit   int           // queued events beyond which push drops; set before the first push

	ctx    context.Context // cancelled to kill the running hook at the end of close
	cancel context.CancelFunc
	done   chan struct{} // closed when the worker has returned

	mu       sync.Mutex
	cond     *sync.Cond // signals any change of items, running or closed
	items    []tokenEvent
	running  bool
	closed   bool
	dropping bool // a drop was logged and the queue has not shrunk since
}

// newEventQueue starts the worker; cmd returns token_event_cmd, or "".
func newEventQueue(cmd func() string) *eventQueue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &eventQueue{
		cmd:     cmd,
		timeout: hookTimeout,
		limit:   maxQueuedEvents,
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	q.cond = sync.NewCond(&q.mu)
	go q.work()
	return q
}

// push queues an event for account, or drops it with a log line after
// close or when the queue is absurdly long.
func (q *eventQueue) push(account, event string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		logDebug("token event %s for account '%s' dropped: server is stopping", event, account)
		return
	}
	if len(q.items) >= q.limit {
		if !q.dropping {
			logWarn("token_event_cmd is not keeping up (%d events queued): dropping new events, starting with %s for account '%s'", len(q.items), event, account)
			q.dropping = true
		}
		return
	}
	q.items = append(q.items, tokenEvent{account, event})
	q.cond.Broadcast()
}

// close stops the queue: later pushes are dropped, queued events run for
// up to grace in all, then the running hook is killed and the rest dropped.
// It returns once the worker has stopped; calling it again is harmless.
func (q *eventQueue) close(grace time.Duration) {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-q.done:
	case <-t.C:
		q.cancel()
		<-q.done
	}
	q.cancel()
}

// work is the single worker: one hook at a time is what keeps events ordered.
func (q *eventQueue) work() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.items) == 0 || q.ctx.Err() != nil {
			if n := len(q.items); n > 0 {
				logWarn("%d token events dropped at shutdown: token_event_cmd did not finish in time", n)
			}
			q.items = nil
			q.cond.Broadcast()
			q.mu.Unlock()
			return
		}
		ev := q.items[0]
		q.items[0] = tokenEvent{}
		q.items = q.items[1:]
		q.dropping = false
		q.running = true
		timeout := q.timeout
		q.mu.Unlock()

		if cmd := q.cmd(); cmd != "" {
			runHook(q.ctx, "token_event_cmd", cmd,
				[]string{"PIZAUTH_ACCOUNT=" + ev.account, "PIZAUTH_EVENT=" + ev.event}, timeout)
		} else {
			logTrace("no token_event_cmd: %s for account '%s' not reported", ev.event, ev.account)
		}

		q.mu.Lock()
		q.running = false
		q.cond.Broadcast()
		q.mu.Unlock()
	}
}

// notifyAuth runs auth_notify_cmd for a login at u (with code, if any).
func notifyAuth(cmd, account, u, code string) {
	if cmd == "" {
		return
	}
	env := []string{"PIZAUTH_ACCOUNT=" + account, "PIZAUTH_URL=" + u}
	if code != "" {
		env = append(env, "PIZAUTH_USER_CODE="+code)
	}
	startHook("auth_notify_cmd", cmd, env, hookTimeout)
}

// notifyError logs msg, which holds no secret, and runs error_notify_cmd.
func notifyError(cmd, account, msg string) {
	logError("%s: %s", account, msg)
	if cmd == "" {
		return
	}
	// Notification daemons render markup: a provider's text must not
	// become a link.
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(msg)
	startHook("error_notify_cmd", cmd, []string{"PIZAUTH_ACCOUNT=" + account, "PIZAUTH_MSG=" + esc}, hookTimeout)
}
