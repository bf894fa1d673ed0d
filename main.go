package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// usage lists every command with what it does; `pizauth help` prints it
// on stdout, a mistake on stderr.
const usage = `Usage: pizauth <command> [<flags>] [<arguments>]

  pizauth show [-u] <account>              print the account's access token
  pizauth refresh [-u] <account>           get a new access token now
  pizauth status [-j]                      each account's token state
  pizauth revoke <account>                 forget the account's tokens
  pizauth server [-c config] [-d] [-v...]  start the server (-d: in the foreground)
  pizauth reload                           make the server re-read its configuration
  pizauth shutdown                         stop the server
  pizauth dump                             write the tokens to stdout, for encrypting
  pizauth restore                          read tokens that dump wrote from stdin
  pizauth info [-j] [-c config]            version, files and the server's ports
  pizauth discover [-d] <issuer-url> [<account>]
                                           print an account block for a provider
  pizauth help | version

See pizauth(1) for every command and flag, pizauth.conf(5) for the file.
`

// version is set with -ldflags "-X main.version=..."; else the toolchain's
// record is used.
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
				return "devel-" + s.Value[:min(len(s.Value), 12)]
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
	flag    string // "j" for -j (JSON), "u" for -u (no URL): the protocol's flag
	verbose int    // number of -v
}

// flagsFor returns the flags cmd accepts ('c' takes a value) and whether cmd
// exists (a switch: a map would be built at every start).
func flagsFor(cmd string) (string, bool) {
	switch cmd {
	case "dump", "reload", "restore", "revoke", "shutdown",
		"help", "-h", "--help", "version", "-V", "--version":
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

// errUsage is a mistake the usage text answers.
var errUsage = errors.New("usage")

// parseArgs parses getopt-style arguments: -dvv, -c file or -cfile, "--".
// A command's missing account is left for the command to report.
func parseArgs(argv []string) (opts, error) {
	var o opts
	if len(argv) == 0 {
		return o, errUsage
	}
	o.cmd = argv[0]
	allowed, ok := flagsFor(o.cmd)
	if !ok {
		return o, errUsage
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
				return o, errUsage
			}
			switch c {
			case 'v':
				o.verbose++
			case 'd':
				o.daemon = true
			case 'j', 'u':
				o.flag = string(c)
			case 'c':
				if i+1 < len(a) {
					o.conf = a[i+1:]
				} else if len(rest) > 0 {
					o.conf, rest = rest[0], rest[1:]
				} else {
					return o, errUsage
				}
				if o.conf == "" {
					return o, errors.New("-c needs a configuration file, not an empty name")
				}
				i = len(a)
			}
		}
	}
	if lo, hi := nargsFor(o.cmd); len(rest) > hi || len(rest) < lo && o.cmd == "discover" {
		return o, errUsage
	}
	o.args = rest
	return o, nil
}

func main() {
	o, err := parseArgs(os.Args[1:])
	if err == errUsage {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(1)
	} else if err != nil {
		os.Exit(fatalf("%v", err))
	}
	switch o.cmd {
	case "help", "-h", "--help":
		os.Stdout.WriteString(usage)
		os.Exit(0)
	case "version", "-V", "--version":
		fmt.Println("pizauth version " + pizauthVersion())
		os.Exit(0)
	case "server":
		os.Exit(serverMain(o))
	case "discover":
		os.Exit(discoverMain(o))
	case "info":
		os.Exit(infoMain(o))
	}
	os.Exit(clientMain(o))
}

// fatalf prints one `ERROR - ` line and returns the exit status 1.
func fatalf(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "ERROR - "+format+"\n", args...)
	return 1
}

// confPath is -c, else $XDG_CONFIG_HOME/pizauth.conf, else
// ~/.config/pizauth.conf.
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

// runtimeDir is $XDG_RUNTIME_DIR/pizauth, else ${TMPDIR:-/tmp}/runtime-<user>/
// pizauth, <user> being $USER, $LOGNAME, the uid's name, or the uid: a
// container's root shell or an rc script may set none of them.
func runtimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "pizauth")
	}
	name := os.Getenv("USER")
	if name == "" {
		name = os.Getenv("LOGNAME")
	}
	if name == "" {
		name = strconv.Itoa(os.Getuid())
		if u, err := user.LookupId(name); err == nil && u.Username != "" {
			name = u.Username
		}
	}
	tmp := os.Getenv("TMPDIR")
	if tmp == "" {
		tmp = "/tmp"
	}
	return filepath.Join(tmp, "runtime-"+name, "pizauth")
}

// checkDir says whether d (Lstat's fi) may hold the socket: a real directory
// of the real uid's, unless writable writable by nobody else. Anyone can
// make /tmp/runtime-<user> first, and get tokens sent to a socket there.
func checkDir(d string, fi os.FileInfo, writable bool) error {
	const fix = "set XDG_RUNTIME_DIR to a private directory of your own"
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("The runtime directory '%s' is a symbolic link: remove it or %s", d, fix)
	case !fi.IsDir():
		return fmt.Errorf("The runtime directory '%s' is not a directory: remove it or %s", d, fix)
	}
	if uid := fileOwner(fi); uid != os.Getuid() {
		return fmt.Errorf("The runtime directory '%s' belongs to uid %d, not to you (uid %d): remove it or %s", d, uid, os.Getuid(), fix)
	}
	if !writable && fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("The runtime directory '%s' is writable by other users (mode %04o): stop the server, run 'chmod 700 %s', or %s", d, fi.Mode().Perm(), d, fix)
	}
	return nil
}

// fileOwner is the uid that owns the file fi describes.
func fileOwner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// socketPath is the path of the server's Unix socket in dir.
func socketPath(dir string) string { return filepath.Join(dir, "pizauth.sock") }
