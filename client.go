package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// clientTimeout bounds a round trip: a mail client must never freeze.
// reloadTimeout is `reload`'s, which waits on every client_secret_cmd.
const (
	clientTimeout = 10 * time.Second
	reloadTimeout = 2 * time.Minute
)

const notRunning = "pizauth authenticator not running or not responding"

// errNotRunning means no server accepted the connection.
var errNotRunning = errors.New(notRunning)

// roundTrip sends one request, if checkRuntime allows, and returns the
// response's values or the server's error.
func roundTrip(fields ...[]byte) ([][]byte, error) {
	dir := runtimeDir()
	if err := checkRuntime(dir); err != nil {
		return nil, err
	}
	timeout := clientTimeout
	if string(fields[0]) == "reload" {
		timeout = reloadTimeout
	}
	return roundTripTo(socketPath(dir), timeout, fields...)
}

// checkRuntime refuses a runtime directory (either level) or socket another
// user made or can change; a missing one means no server runs.
func checkRuntime(dir string) error {
	for _, d := range []string{filepath.Dir(dir), dir} {
		fi, err := os.Lstat(d)
		if err != nil {
			return errNotRunning
		}
		if err := checkDir(d, fi, false); err != nil {
			return err
		}
	}
	sock := socketPath(dir)
	fi, err := os.Lstat(sock)
	if err != nil {
		return errNotRunning
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("'%s' is not a socket: remove it, then start the server again", sock)
	}
	if uid := fileOwner(fi); uid != os.Getuid() {
		return fmt.Errorf("The socket '%s' belongs to uid %d, not to you (uid %d): remove it or set XDG_RUNTIME_DIR to a private directory of your own", sock, uid, os.Getuid())
	}
	return nil
}

// roundTripTo makes one request at path, refusing before a byte is sent a
// server that SO_PEERCRED says is another user's.
func roundTripTo(path string, timeout time.Duration, fields ...[]byte) ([][]byte, error) {
	conn, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, errNotRunning
	}
	defer conn.Close()
	if uid, err := peerUID(conn.(*net.UnixConn)); err == nil && uid != os.Getuid() {
		return nil, fmt.Errorf("The server on '%s' runs as uid %d, not as you (uid %d): nothing was sent; set XDG_RUNTIME_DIR to a private directory of your own", path, uid, os.Getuid())
	}
	conn.SetDeadline(time.Now().Add(timeout))
	if err := writeFrame(conn, encodeFields(fields...)); err != nil {
		return nil, fmt.Errorf("%s (sending the request failed: %v)", notRunning, err)
	}
	resp, err := readFrame(conn, maxFrame)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("pizauth authenticator not responding: no answer within %s", timeout)
		}
		return nil, fmt.Errorf("%s (%v)", notRunning, err)
	}
	return decodeResponse(resp)
}

// clientMain runs every command but `server`, `discover` and `info` (one
// request, one answer) and returns the exit status.
func clientMain(o opts) int {
	if lo, _ := nargsFor(o.cmd); len(o.args) < lo {
		return missingAccount(o.cmd)
	}
	req := [][]byte{[]byte(o.cmd)}
	switch o.cmd {
	case "show", "refresh":
		req = append(req, []byte(o.flag), []byte(o.args[0]))
	case "status":
		req = append(req, []byte(o.flag))
	case "revoke":
		req = append(req, []byte(o.args[0]))
	case "dump":
		if isTerminal(os.Stdout) {
			return fatalf("Not writing the dump to a terminal: redirect it to a program that encrypts it, e.g. 'pizauth dump | age -R recipients.txt -o pizauth.age'")
		}
	case "restore":
		// One byte past the limit: refuse an oversized stream here.
		b, err := io.ReadAll(io.LimitReader(os.Stdin, maxDumpSize+1))
		if err != nil {
			return fatalf("Can't read the dump from stdin: %v", err)
		}
		if len(b) > maxDumpSize {
			return fatalf("Dump is too large (more than %d MiB): is stdin really a pizauth dump?", maxDumpSize>>20)
		}
		if len(b) == 0 {
			return fatalf("Nothing to restore: stdin is empty (pipe the output of 'pizauth dump' into 'pizauth restore')")
		}
		req = append(req, b)
	}
	vals, err := roundTrip(req...)
	if err != nil {
		return fatalf("%v", err)
	}
	if o.cmd == "shutdown" {
		return waitStopped()
	}
	if len(vals) != 1 {
		return 0
	}
	out := vals[0]
	switch o.cmd {
	case "show":
		// One write: a reader never sees the token without its newline.
		out = append(append(make([]byte, 0, len(out)+1), out...), '\n')
		fallthrough
	case "status", "dump":
		if _, err := os.Stdout.Write(out); err != nil {
			return fatalf("Can't write to standard output: %v", err)
		}
	case "restore":
		fmt.Fprintf(os.Stderr, "%s\n", out)
	}
	return 0
}

// missingAccount says that cmd's account is missing and, when a server
// answers, which accounts it has.
func missingAccount(cmd string) int {
	msg, sep := "Missing account name: pizauth "+cmd+" <account>", "; the server's accounts are '"
	var st struct{ Accounts []struct{ Name string } }
	if vals, err := roundTrip([]byte("status"), []byte("j")); err == nil && len(vals) == 1 && json.Unmarshal(vals[0], &st) == nil {
		for _, a := range st.Accounts {
			msg, sep = msg+sep+a.Name+"'", ", '"
		}
	}
	return fatalf("%s", msg)
}

// isTerminal says whether f is a terminal, or at least a character device
// other than /dev/null, where a dump would be as bad.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	null, nerr := os.Stat(os.DevNull)
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && (nerr != nil || !os.SameFile(fi, null))
}

// infoFormatVersion is bumped whenever the `info -j` object changes shape.
const infoFormatVersion = 2

// infoMain prints what it knows, and what a server, if any, says. The JSON
// has every member of the original's `info -j`, under its names, and ours.
func infoMain(o opts) int {
	conf, err := confPath(o.conf)
	if err != nil {
		conf = ""
	}
	dir := runtimeDir()
	vals, err := roundTrip([]byte("info"))
	running := err == nil && len(vals) == 5
	if err != nil && !errors.Is(err, errNotRunning) {
		fmt.Fprintf(os.Stderr, "WARN - %v\n", err)
	}
	if running && o.conf == "" {
		// The file the running server reads, which -c may have chosen.
		conf = string(vals[3])
	}
	if o.flag == "j" {
		type serverInfo struct {
			HTTPPort    string `json:"http_port"`
			HTTPSPort   string `json:"https_port"`
			PubKey      string `json:"https_pub_key,omitempty"`
			Fingerprint string `json:"https_cert_fingerprint"`
		}
		out := struct {
			Format     int         `json:"info_format_version"`
			Version    string      `json:"pizauth_version"`
			ExecutedAs string      `json:"executed_as"`
			CacheDir   string      `json:"cache_directory"`
			ConfigFile string      `json:"config_file"`
			Running    bool        `json:"server_running"`
			Server     *serverInfo `json:"server_info,omitempty"`
		}{infoFormatVersion, pizauthVersion(), os.Args[0], dir, conf, running, nil}
		if running {
			out.Server = &serverInfo{string(vals[0]), string(vals[1]), string(vals[4]), string(vals[2])}
		}
		b, _ := json.Marshal(out)
		os.Stdout.Write(append(b, '\n'))
		return 0
	}
	if _, err := os.Stat(conf); conf != "" && errors.Is(err, os.ErrNotExist) {
		conf += " (does not exist)"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "pizauth version %s:\n", pizauthVersion())
	fmt.Fprintf(&sb, "  cache directory: %s\n", dir)
	fmt.Fprintf(&sb, "  config file: %s\n", conf)
	if running {
		fmt.Fprintf(&sb, "  server running: HTTP port %s, HTTPS port %s\n", vals[0], vals[1])
		if len(vals[2]) > 0 {
			fmt.Fprintf(&sb, "  HTTPS certificate fingerprint: %s\n", vals[2])
		}
	} else {
		sb.WriteString("  server running: no\n")
	}
	os.Stdout.WriteString(sb.String())
	return 0
}
