package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoRun starts `make demo`'s script with the test-built pizauth, in a
// process group of its own, as a terminal runs a command.
func demoRun(t *testing.T, stdin io.Reader) (*exec.Cmd, *e2eBuffer, context.CancelFunc) {
	t.Helper()
	needProgram(t, "go", "golang")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, "sh", "examples/demo.sh")
	cmd.Env = append(os.Environ(), "PIZAUTH="+e2eBin)
	cmd.Stdin = stdin
	out := &e2eBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("demo output:\n%s", out.String())
		}
	})
	return cmd, out, cancel
}

// demoLeftovers checks that the processes and the directory the demo
// announced are gone.
func demoLeftovers(t *testing.T, out string) {
	t.Helper()
	for _, re := range []string{`provider \(pid (\d+)\)`, `pizauth server \(pid (\d+)\)`} {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("the demo did not say %s", re)
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d is still running after the demo ended", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if m := regexp.MustCompile(`runtime directory of its own in (\S+):`).FindStringSubmatch(out); m == nil {
		t.Errorf("the demo did not say where its directory is")
	} else if _, err := os.Stat(m[1]); err == nil {
		t.Errorf("the demo left %s behind", m[1])
		os.RemoveAll(m[1])
	}
}

// TestDemo runs `make demo` without a terminal, as `make check` does: the
// script plays the browser, and the whole flow must be shown working.
func TestDemo(t *testing.T) {
	t.Parallel()
	cmd, out, cancel := demoRun(t, nil)
	defer cancel()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the demo failed: %v", err)
	}
	text := out.String()
	tokens := regexp.MustCompile(`(?m)^demo-access-\S+$`).FindAllString(text, -1)
	for _, want := range []string{
		"ERROR - Token unavailable until authorised with URL http://127.0.0.1:",
		processingPage,
		"$ pizauth status\ndemo: Active access token (obtained ",
		"$ pizauth shutdown\n",
		"== Done",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if len(tokens) != 2 || tokens[0] == tokens[1] {
		t.Errorf("the demo showed tokens %q; want a token and then its refreshed successor", tokens)
	}
	demoLeftovers(t, text)
}

// TestDemoInterrupted presses Ctrl-C while the demo waits for the person
// to log in: everything it started must stop.
func TestDemoInterrupted(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe() // never written: the demo waits for Enter
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cmd, out, cancel := demoRun(t, r)
	r.Close()
	defer cancel()
	e2eWait(t, 30*time.Second, func() bool { return strings.Contains(out.String(), "press Enter") }, "the demo to wait for Enter")
	// Ctrl-C signals the terminal's whole foreground process group.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("the interrupted demo exited with %v, want status 130", err)
	}
	if !strings.Contains(out.String(), "Interrupted") {
		t.Errorf("the demo did not say it was interrupted")
	}
	demoLeftovers(t, out.String())
}
