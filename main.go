package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

const usage = `Usage:
  pizauth discover [-d] <issuer-url> [<account>]
  pizauth dump
  pizauth info [-j] [-c config]
  pizauth refresh [-u] <account>
  pizauth reload
  pizauth restore
  pizauth revoke <account>
  pizauth server [-c config] [-d] [-v...]
  pizauth show [-u] <account>
  pizauth shutdown
  pizauth status [-j]
`

// version is set at build time with -ldflags "-X main.version=...". When it
// is empty (a plain `go build` or `go install`), the module version recorded
// by the toolchain is used instead.
var version string

func pizauthVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return "devel-" + truncate(s.Value, 12)
			}
		}
	}
	return "unknown"
}

// opts are the parsed command-line options.
type opts struct {
	cmd     string
	args    []string
	conf    string // -c
	daemon  bool   // -d
	json    bool   // -j
	noURL   bool   // -u
	verbose int    // number of -v
}

// flagsFor returns the flags cmd accepts ('c' takes a value) and whether cmd
// exists. A switch rather than a map: a package-level map literal is built
// by main's init on every start, `pizauth show` included.
func flagsFor(cmd string) (string, bool) {
	switch cmd {
	case "dump", "reload", "restore", "revoke", "shutdown":
		return "", true
	case "discover":
		return "d", true
	case "info":
		return "jc", true
	case "refresh", "show":
		return "u", true
	case "server":
		return "cd", true
	case "status":
		return "j", true
	}
	return "", false
}

// nargsFor is the range of the number of positional arguments cmd takes.
func nargsFor(cmd string) (lo, hi int) {
	switch cmd {
	case "discover":
		return 1, 2
	case "refresh", "revoke", "show":
		return 1, 1
	}
	return 0, 0
}

// parseArgs parses getopt-style arguments: flags may be combined (-vvv,
// -dv), -c takes the next word or the rest of its own word, and "--" ends
// the flags.
func parseArgs(argv []string) (opts, bool) {
	var o opts
	if len(argv) == 0 {
		return o, false
	}
	o.cmd = argv[0]
	allowed, ok := flagsFor(o.cmd)
	if !ok {
		return o, false
	}
	rest := argv[1:]
	for len(rest) > 0 {
		a := rest[0]
		if a == "--" {
			rest = rest[1:]
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		rest = rest[1:]
		for i := 1; i < len(a); i++ {
			c := a[i]
			if c != 'v' && !strings.ContainsRune(allowed, rune(c)) {
				return o, false
			}
			switch c {
			case 'v':
				o.verbose++
			case 'd':
				o.daemon = true
			case 'j':
				o.json = true
			case 'u':
				o.noURL = true
			case 'c':
				if i+1 < len(a) {
					o.conf = a[i+1:]
				} else if len(rest) > 0 {
					o.conf, rest = rest[0], rest[1:]
				} else {
					return o, false
				}
				i = len(a)
			}
		}
	}
	if lo, hi := nargsFor(o.cmd); len(rest) < lo || len(rest) > hi {
		return o, false
	}
	o.args = rest
	return o, true
}

func main() {
	o, ok := parseArgs(os.Args[1:])
	if !ok {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(1)
	}
	switch o.cmd {
	case "server":
		os.Exit(serverMain(o))
	case "discover":
		os.Exit(discoverMain(o))
	}
	os.Exit(clientMain(o))
}

// fatalf prints one `ERROR - ` line and returns the exit status 1.
func fatalf(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "ERROR - "+format+"\n", args...)
	return 1
}

// confPath is the configuration file the server reads: -c, else
// $XDG_CONFIG_HOME/pizauth.conf, else ~/.config/pizauth.conf.
func confPath(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "pizauth.conf"), nil
	}
	if h := os.Getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "pizauth.conf"), nil
	}
	return "", fmt.Errorf("neither XDG_CONFIG_HOME nor HOME is set: give the configuration file with -c")
}

// runtimeDir is where the socket lives: $XDG_RUNTIME_DIR/pizauth, else
// ${TMPDIR:-/tmp}/runtime-$USER/pizauth.
func runtimeDir() (string, error) {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "pizauth"), nil
	}
	user := os.Getenv("USER")
	if user == "" {
		user = os.Getenv("LOGNAME")
	}
	if user == "" {
		return "", fmt.Errorf("neither XDG_RUNTIME_DIR nor USER is set: set XDG_RUNTIME_DIR to a private directory")
	}
	tmp := os.Getenv("TMPDIR")
	if tmp == "" {
		tmp = "/tmp"
	}
	return filepath.Join(tmp, "runtime-"+user, "pizauth"), nil
}

// socketPath is the path of the server's Unix socket.
func socketPath() (string, error) {
	d, err := runtimeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "pizauth.sock"), nil
}
