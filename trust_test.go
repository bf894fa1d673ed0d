package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests play the local attacker of SPEC §12: another user who gets
// to ${TMPDIR:-/tmp}/runtime-<user> first, or listens on a socket there.
// The client must notice before it sends a single byte.

// testRoleEnv makes the test binary act as a small socket program instead
// of running tests, so that root-only tests can run it as another uid.
const testRoleEnv = "PIZAUTH_TEST_ROLE"

// testRole runs the role named by testRoleEnv: "listen PATH" listens on a
// Unix socket, says "ready", accepts one connection and reports how many
// bytes it received; "dial PATH" sends a show request and reports whether
// an answer came back; "get URL" reports the status of a GET, or that none
// came; "squat" listens on [::1] at half the odd ports of the ephemeral range
// (those that Linux gives a listener on port 0), says "ready N" and holds
// them for a minute.
func testRole(role string) int {
	verb, path, _ := strings.Cut(role, " ")
	switch verb {
	case "get":
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
		resp, err := client.Get(path)
		if err != nil {
			fmt.Println("no answer")
			return 0
		}
		resp.Body.Close()
		fmt.Println("status", resp.StatusCode)
		return 0
	case "squat":
		lo, hi := 32768, 60999
		if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
			fmt.Sscan(string(b), &lo, &hi)
		}
		var held []net.Listener
		for p := lo | 1; p <= hi; p += 2 {
			if p%4 == 3 {
				continue // half left free, so that a pick soon succeeds
			}
			if l, err := net.Listen("tcp", net.JoinHostPort("::1", strconv.Itoa(p))); err == nil {
				held = append(held, l)
			}
		}
		fmt.Println("ready", len(held))
		time.Sleep(time.Minute) // or until the test kills it
		return 0
	case "listen":
		l, err := net.Listen("unix", path)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println("ready")
		l.(*net.UnixListener).SetDeadline(time.Now().Add(20 * time.Second))
		c, err := l.Accept()
		if err != nil {
			fmt.Println("no connection")
			return 0
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		n, _ := io.Copy(io.Discard, c)
		fmt.Printf("received %d bytes\n", n)
		return 0
	case "dial":
		c, err := net.Dial("unix", path)
		if err != nil {
			fmt.Println("cannot connect:", err)
			return 0
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		writeFrame(c, encodeFields([]byte("show"), nil, []byte("a")))
		if resp, err := readFrame(c, maxFrame); err == nil {
			fmt.Printf("answered %q\n", resp)
		} else {
			fmt.Println("no answer")
		}
		return 0
	}
	return 2
}

// runAs runs the test binary in role as uid, from the copy TestMain made
// for other users.
func runAs(t *testing.T, uid int, role string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(e2eRoleBin)
	cmd.Env = []string{testRoleEnv + "=" + role}
	if uid != os.Getuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

// strangerDir makes the runtime directory a client without XDG_RUNTIME_DIR
// would use, ${TMPDIR}/runtime-<USER>/pizauth, as an attacker would leave
// it, with a socket inside on which the test listens, counting bytes.
func strangerEnv(t *testing.T) (env []string, top, dir string, received func() int) {
	t.Helper()
	root := e2eShortDir(t)
	top = filepath.Join(root, "runtime-victim")
	dir = filepath.Join(top, "pizauth")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(dir, "pizauth.sock"))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			n, _ := io.Copy(io.Discard, c)
			c.Close()
			got <- int(n) + 1 // +1: a connection was made at all
		}
	}()
	t.Cleanup(func() { l.Close() })
	env = []string{"HOME=" + root, "TMPDIR=" + root, "USER=victim", "PATH=" + os.Getenv("PATH")}
	received = func() int {
		total := 0
		for {
			select {
			case n := <-got:
				total += n
			case <-time.After(100 * time.Millisecond):
				return total
			}
		}
	}
	return env, top, dir, received
}

// runEnv runs the pizauth binary with env and stdin.
func runEnv(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e2eBin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("pizauth %s did not finish within 15 s", strings.Join(args, " "))
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// TestE2EClientRefusesStrangersRuntimeDir: every client command refuses a
// runtime directory that is a symbolic link, writable by others, or owned
// by someone else, and a socket someone else owns, with one line naming the
// path and the problem, and sends nothing: not a show, and above all not a
// restore, whose dump would give away every token.
func TestE2EClientRefusesStrangersRuntimeDir(t *testing.T) {
	t.Parallel()
	dump := string(mustEncodeDump(t, sampleDumpEntries()))
	commands := [][]string{{"show", "a"}, {"refresh", "a"}, {"status"}, {"restore"}, {"dump"}, {"revoke", "a"}, {"reload"}, {"shutdown"}}
	check := func(what string, env []string, received func() int, want string) {
		t.Helper()
		for _, args := range commands {
			out, errOut, code := runEnv(t, env, dump, args...)
			if code != 1 || out != "" || !strings.HasPrefix(errOut, "ERROR - ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, want) {
				t.Errorf("%s: pizauth %s: exit %d, stdout %q, stderr %q; want exit 1 and one line containing %q",
					what, strings.Join(args, " "), code, out, errOut, want)
			}
		}
		if n := received(); n != 0 {
			t.Errorf("%s: the stranger's socket saw a connection (%d bytes and connections)", what, n)
		}
	}

	env, top, dir, received := strangerEnv(t)
	for _, d := range []string{top, dir} {
		os.Chmod(top, 0o700)
		os.Chmod(dir, 0o700)
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
		check(d+" mode 0777", env, received, "The runtime directory '"+d+"' is writable by other users (mode 0777)")
	}
	os.Chmod(top, 0o700)
	os.Chmod(dir, 0o700)

	// A level that is a symbolic link, even to a private directory.
	real := top + ".real"
	if err := os.Rename(top, real); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, top); err != nil {
		t.Fatal(err)
	}
	check("symlinked "+top, env, received, "The runtime directory '"+top+"' is a symbolic link")
	os.Remove(top)
	os.Rename(real, top)

	if os.Getuid() != 0 {
		t.Logf("not root (uid %d): skipping directories and sockets owned by another user", os.Getuid())
		return
	}
	for _, d := range []string{top, dir} {
		if err := os.Chown(d, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		check(d+" owned by another user", env, received, fmt.Sprintf("The runtime directory '%s' belongs to uid %d, not to you (uid 0)", d, otherUID))
		os.Chown(d, 0, 0)
	}
	sock := filepath.Join(dir, "pizauth.sock")
	if err := os.Chown(sock, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	check("socket owned by another user", env, received, fmt.Sprintf("The socket '%s' belongs to uid %d, not to you (uid 0)", sock, otherUID))
}

// TestE2EClientChecksServerUID: with the directory and socket made to look
// like the user's own, a server process running as another uid is still
// caught by SO_PEERCRED after connecting, before a byte is sent.
func TestE2EClientChecksServerUID(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SO_PEERCRED is checked on Linux only")
	}
	skipUnlessRoot(t, "run a listener as another user")
	t.Parallel()
	root := e2eShortDir(t)
	dir := filepath.Join(root, "run", "pizauth")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(dir), 0o777)
	os.Chmod(dir, 0o777)
	os.Chmod(root, 0o755)
	sock := filepath.Join(dir, "pizauth.sock")
	_, out := runAs(t, otherUID, "listen "+sock)
	if line, _ := out.ReadString('\n'); line != "ready\n" {
		t.Fatalf("listener as uid %d: %q", otherUID, line)
	}
	for _, p := range []string{filepath.Dir(dir), dir} {
		os.Chmod(p, 0o700)
	}
	if err := os.Chown(sock, 0, 0); err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_RUNTIME_DIR=" + filepath.Dir(dir), "HOME=" + root, "PATH=" + os.Getenv("PATH")}
	_, errOut, code := runEnv(t, env, "", "show", "a")
	want := fmt.Sprintf("ERROR - The server on '%s' runs as uid %d, not as you (uid 0): nothing was sent", sock, otherUID)
	if code != 1 || !strings.HasPrefix(errOut, want) {
		t.Errorf("show against a server of uid %d: exit %d, stderr %q; want %q", otherUID, code, errOut, want)
	}
	if line, _ := out.ReadString('\n'); line != "received 0 bytes\n" {
		t.Errorf("the other user's listener reports %q, want 0 bytes", line)
	}
}

// TestE2EBareEnvironment: with neither XDG_RUNTIME_DIR, USER nor LOGNAME
// set (a root shell in a container, some service managers), server and
// client agree on ${TMPDIR}/runtime-<name>/pizauth, where the name comes
// from the user database, and every command works.
func TestE2EBareEnvironment(t *testing.T) {
	t.Parallel()
	p := newFakeProvider(t)
	s := newSrvEnv(t, e2eConf(nil, p.account("a", p.addClient(fakeClient{}), "")))
	name := strconv.Itoa(os.Getuid())
	if u, err := user.LookupId(name); err == nil && u.Username != "" {
		name = u.Username
	}
	s.env = []string{"HOME=" + s.home, "TMPDIR=" + s.root, "SHELL=/bin/sh", "PATH=" + os.Getenv("PATH")}
	s.runDir = filepath.Join(s.root, "runtime-"+name)
	s.start(t)
	if fi, err := os.Lstat(s.socketPath()); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no socket at %s: %v", s.socketPath(), err)
	}
	tok := s.authorise(t, "a")
	if got := s.showToken(t, "a"); got != tok {
		t.Errorf("show printed %q, want %q", got, tok)
	}
	if inf := s.info(t); !inf.ServerRunning || inf.CacheDirectory != filepath.Dir(s.socketPath()) {
		t.Errorf("info: running %v, cache directory %q; want %q", inf.ServerRunning, inf.CacheDirectory, filepath.Dir(s.socketPath()))
	}
	s.mustRun(t, "shutdown")
	s.waitExit(t)
}
