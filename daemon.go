package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/syslog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readyFDEnv gives a detached server its readiness pipe. Go cannot fork, so
// `pizauth server` re-executes itself in a new session and waits for "OK"
// (its socket listens) or "E <message>", which reaches the terminal.
const readyFDEnv = "_PIZAUTH_READY_FD"

// serverMain runs `pizauth server` and returns the exit status.
func serverMain(o opts) int {
	lg.setLevel(o.verbose)
	// The last lines get out, unless the log is stalled.
	defer lg.flush(time.Second)
	// What the launching shell left open (a pipe it waits on for EOF, say)
	// must reach neither the detached server nor a hook.
	closeInheritedOnExec()
	var ready *os.File
	if fd := os.Getenv(readyFDEnv); fd != "" {
		os.Unsetenv(readyFDEnv)
		n, err := strconv.Atoi(fd)
		if err != nil {
			return fatalf("Bad %s: %q", readyFDEnv, fd)
		}
		ready = os.NewFile(uintptr(n), "ready")
	} else if !o.daemon {
		return detach()
	}
	// A vanished stderr reader must not kill the server: with SIGPIPE
	// caught the write just fails, and hooks get the default back.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	// Under `stty tostop`, hooks, in their own process group, would stop
	// at their first line of output; an ignored SIGTTOU survives exec.
	signal.Ignore(syscall.SIGTTOU)

	var syslogErr error
	if ready != nil {
		sys, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "pizauth")
		if err != nil {
			syslogErr = err
			lg.setOutput(nil, nil)
		} else {
			lg.setOutput(nil, sys)
		}
	}

	s, err := startServer(o.conf)
	if err != nil {
		if ready != nil {
			fmt.Fprintf(ready, "E %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return 1
		}
		return fatalf("%v", err)
	}
	logInfo("Listening on %s (HTTP port %s, HTTPS port %s)", s.sockPath, portString(s.st.httpPort), portString(s.st.httpsPort))

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	s.st.mu.Lock()
	startup, warnings := s.st.conf.StartupCmd, s.st.conf.Warnings
	s.st.mu.Unlock()
	// Configuration warnings reach the terminal, whatever the log level.
	for _, w := range warnings {
		if ready != nil {
			fmt.Fprintf(ready, "W %s\n", w)
		} else {
			fmt.Fprintf(os.Stderr, "WARN - %s\n", w)
		}
	}
	if ready != nil {
		// Only a started server warns: a refused start says why.
		if syslogErr != nil {
			fmt.Fprintf(ready, "W Can't reach syslog (%v): the server's messages will be lost; run 'pizauth server -d' to see them\n", syslogErr)
		}
		fmt.Fprintln(ready, "OK")
		ready.Close()
	}
	notifySystemd()
	if startup != "" {
		startHook("startup_cmd", startup, nil, 0)
	}

	for {
		select {
		case <-s.done:
			logInfo("Stopped")
			return 0
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGHUP:
				// Not in this loop: a slow client_secret_cmd must not
				// delay a SIGTERM.
				go s.reload()
			case s.stopping.Load():
				logWarn("Received %v again: stopping now, without waiting for token requests or token_event_cmd", sig)
				s.st.endWork()
				s.st.events.close(0)
			default:
				logInfo("Received %v", sig)
				go s.shutdown()
			}
		}
	}
}

// closeInheritedOnExec marks every descriptor from 3 up close-on-exec: those
// /proc/self/fd lists, else every number up to the limit (well under 1 s).
func closeInheritedOnExec() {
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
				syscall.CloseOnExec(fd)
			}
		}
		return
	}
	limit := uint64(1 << 16)
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && uint64(rl.Cur) < limit {
		limit = uint64(rl.Cur)
	}
	for fd := 3; uint64(fd) < limit; fd++ {
		syscall.CloseOnExec(fd)
	}
}

// detach starts the server in the background and waits until it is ready.
func detach() int {
	exe, err := os.Executable()
	if err != nil {
		if exe, err = exec.LookPath(os.Args[0]); err != nil {
			return fatalf("Can't find my own executable to start the server: %v", err)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fatalf("Can't start the server: %v", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), readyFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fatalf("Can't start the server: %v", err)
	}
	w.Close()
	cmd.Process.Release()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "OK":
			return 0
		case strings.HasPrefix(line, "W "):
			fmt.Fprintf(os.Stderr, "WARN - %s\n", line[2:])
		case strings.HasPrefix(line, "E "):
			return fatalf("%s", line[2:])
		}
	}
	return fatalf("The server exited during start-up: run 'pizauth server -d' to see why")
}

// notifySystemd tells a Type=notify service manager we are ready: one
// datagram.
func notifySystemd() {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	os.Unsetenv("NOTIFY_SOCKET") // hooks are not services
	c, err := net.Dial("unixgram", addr)
	if err != nil {
		logWarn("Can't reach NOTIFY_SOCKET: %v", err)
		return
	}
	defer c.Close()
	if _, err := c.Write([]byte("READY=1")); err != nil {
		logWarn("Can't notify the service manager: %v", err)
	}
}

// shutdownWait bounds `pizauth shutdown`'s wait: the token requests, the
// token events, then a moment.
const shutdownWait = workGrace + eventQueueDrainTimeout + 5*time.Second

// waitStopped waits until no server answers, so that a script can start a
// new one (or read what token_event_cmd saved) once `shutdown` returns.
func waitStopped() int {
	deadline := time.Now().Add(shutdownWait)
	for time.Now().Before(deadline) {
		if _, err := roundTrip([]byte("info")); errors.Is(err, errNotRunning) {
			return 0
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fatalf("The server is still stopping after %s (waiting for a provider, or running token_event_cmd?): it stops once the token requests sent and the queued token events have finished or timed out; check with 'pizauth status'", shortDuration(shutdownWait))
}
