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
const clientTimeout = 10 * time.Second

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
	return roundTripTo(socketPath(dir), clientTimeout, fields...)
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

// clientMain runs every command but `server` and returns the exit status.
func clientMain(o opts) int {
	flag := ""
	if o.noURL {
		flag = "u"
	}
	switch o.cmd {
	case "show", "refresh":
		vals, err := roundTrip([]byte(o.cmd), []byte(flag), []byte(o.args[0]))
		if err != nil {
			return fatalf("%v", err)
		}
		if o.cmd == "show" && len(vals) == 1 {
			out := make([]byte, 0, len(vals[0])+1)
			out = append(append(out, vals[0]...), '\n')
			if _, err := os.Stdout.Write(out); err != nil {
				return fatalf("Can't write the token: %v", err)
			}
		}
		return 0
	case "status":
		if o.json {
			flag = "j"
		}
		vals, err := roundTrip([]byte("status"), []byte(flag))
		if err != nil {
			return fatalf("%v", err)
		}
		if len(vals) == 1 {
			os.Stdout.Write(vals[0])
		}
		return 0
	case "info":
		return infoMain(o)
	case "shutdown":
		if _, err := roundTrip([]byte("shutdown")); err != nil {
			return fatalf("%v", err)
		}
		return waitStopped()
	case "reload", "dump":
		vals, err := roundTrip([]byte(o.cmd))
		if err != nil {
			return fatalf("%v", err)
		}
		if o.cmd == "dump" && len(vals) == 1 {
			if _, err := os.Stdout.Write(vals[0]); err != nil {
				return fatalf("Can't write the dump: %v", err)
			}
		}
		return 0
	case "revoke":
		if _, err := roundTrip([]byte("revoke"), []byte(o.args[0])); err != nil {
			return fatalf("%v", err)
		}
		return 0
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
		if _, err := roundTrip([]byte("restore"), b); err != nil {
			return fatalf("%v", err)
		}
		return 0
	}
	fmt.Fprint(os.Stderr, usage)
	return 1
}

// infoFormatVersion is bumped whenever the `info -j` object changes shape.
const infoFormatVersion = 2

// infoMain prints what it knows, and what a server, if any, says.
func infoMain(o opts) int {
	conf, err := confPath(o.conf)
	if err != nil {
		conf = ""
	}
	dir := runtimeDir()
	vals, err := roundTrip([]byte("info"))
	running := err == nil && len(vals) == 4
	if err != nil && !errors.Is(err, errNotRunning) {
		fmt.Fprintf(os.Stderr, "WARN - %v\n", err)
	}
	if running && o.conf == "" {
		// The file the running server reads, which -c may have chosen.
		conf = string(vals[3])
	}
	if o.json {
		type serverInfo struct {
			HTTPPort    string `json:"http_port"`
			HTTPSPort   string `json:"https_port"`
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
			out.Server = &serverInfo{string(vals[0]), string(vals[1]), string(vals[2])}
		}
		b, _ := json.Marshal(out)
		os.Stdout.Write(append(b, '\n'))
		return 0
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
