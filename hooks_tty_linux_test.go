package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPty opens a pseudo-terminal pair with TOSTOP set, as after
// `stty tostop`.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	ioctl := func(f *os.File, req uintptr, arg unsafe.Pointer) error {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), req, uintptr(arg)); e != 0 {
			return e
		}
		return nil
	}
	var n uint32
	var unlock int32
	if err := ioctl(m, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Skipf("TIOCGPTN: %v", err)
	}
	if err := ioctl(m, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Skipf("TIOCSPTLCK: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	var tio syscall.Termios
	if err := ioctl(s, syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatal(err)
	}
	tio.Lflag |= syscall.TOSTOP
	if err := ioctl(s, syscall.TCSETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestE2EHooksOnTerminalWithTostop: a `pizauth server -d` on a terminal
// with `stty tostop` runs hooks (each in a process group of its own, so in
// the background) to the end: their output reaches the terminal rather than
// stopping them, and their stdin is /dev/null, never the terminal.
func TestE2EHooksOnTerminalWithTostop(t *testing.T) {
	t.Parallel()
	master, slave := openPty(t)
	p := newFakeProvider(t)
	done := filepath.Join(t.TempDir(), "done")
	hook := fmt.Sprintf(`echo hook output; read x; echo "read $?" > '%[1]s.tmp'; mv '%[1]s.tmp' '%[1]s'`, done)
	s := newSrvEnv(t, e2eConf(map[string]string{"startup_cmd": confQuote(hook)},
		p.account("a", p.addClient(fakeClient{}), "")))
	var term e2eBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			term.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	cmd := exec.Command(e2eBin, "server", "-d", "-c", s.confPath)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// The server leads a session whose controlling terminal is the pty,
	// and its process group is the terminal's foreground group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	s.startCmd(t, cmd)
	s.waitFor(t, func() bool { return e2eRead(done) != "" }, "startup_cmd to finish")
	if got := e2eRead(done); got == "read 0\n" {
		t.Errorf("startup_cmd read a line from its stdin, want end-of-file from /dev/null")
	}
	s.waitFor(t, func() bool { return strings.Contains(term.String(), "hook output") }, "the hook's output on the terminal")
}

// TestE2EDumpRefusesTerminal: `pizauth dump` never writes the tokens to a
// terminal, where they would stay in the scrollback, and says how to
// redirect them; /dev/null is no terminal.
func TestE2EDumpRefusesTerminal(t *testing.T) {
	t.Parallel()
	_, slave := openPty(t)
	p := newFakeProvider(t)
	s := startSrv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	s.authorise(t, "a")
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for _, tc := range []struct {
		out  *os.File
		code int
		want string
	}{
		{slave, 1, "ERROR - Not writing the dump to a terminal: redirect it to a program that encrypts it, e.g. 'pizauth dump | age -R recipients.txt -o pizauth.age'\n"},
		{null, 0, ""},
	} {
		var errOut strings.Builder
		cmd := exec.Command(e2eBin, "dump")
		cmd.Env, cmd.Stdout, cmd.Stderr = s.env, tc.out, &errOut
		cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != tc.code || errOut.String() != tc.want {
			t.Errorf("pizauth dump > %s: exit %d, stderr %q; want exit %d and %q", tc.out.Name(), code, errOut.String(), tc.code, tc.want)
		}
	}
}
