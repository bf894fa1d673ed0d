# pizauth Makefile. Works with GNU make (>= 4.0) and BSD make (bmake,
# OpenBSD and FreeBSD make): no pattern rules, no conditionals, no GNU
# functions. `VAR != cmd` is understood by both.
#
#   make                 build ./pizauth (static, reproducible)
#   make demo            watch pizauth get and refresh a token from a small
#                        provider on this machine (examples/demo.sh)
#   make check           the whole test suite (what .ci/run runs)
#   make install         install under $(DESTDIR)$(PREFIX)
#   make uninstall       remove what install put there
#   make bench           `pizauth show` latency against two floors, then
#                        the server's memory and idle CPU (bench-memory)
#   make bench-memory    the server's memory and idle CPU only (about 80 s)
#   make clean
#
# Packagers: set VERSION when building outside a git checkout (a release
# tarball, or a tree unpacked inside some other repository), e.g.
# `make VERSION=1.2.3`. Every directory below can be overridden on the
# command line, e.g. `make install PREFIX=/usr MANDIR=/usr/share/man`.

GO ?= go
VERSION != git describe --tags --always --dirty 2>/dev/null || echo unknown

# -trimpath and an empty build id keep machine paths and per-build noise out
# of the binary; -buildvcs=false keeps it independent of the git working
# tree state (the version is stamped explicitly instead). CGO_ENABLED=0
# gives a static binary: it starts faster than a cgo-linked one and runs on
# any distribution.
GOBUILDFLAGS = -trimpath -buildvcs=false
GOLDFLAGS = -s -w -buildid= -X main.version=$(VERSION)

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
SYSTEMDUSERUNITDIR ?= $(PREFIX)/lib/systemd/user
EXAMPLESDIR ?= $(PREFIX)/share/examples/pizauth

CROSS_OS = linux freebsd openbsd netbsd darwin
CROSS_ARCH = amd64 arm64
TEST_TIMEOUT = 10m

.PHONY: all check check-fmt check-vet check-test check-cross check-man \
	check-completion check-install check-installed check-install-busy \
	check-uninstalled \
	check-repro install uninstall bench bench-memory demo clean

all:
	CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -ldflags "$(GOLDFLAGS)" -o pizauth .

# `make install` uses an existing ./pizauth and builds one only if there is
# none, so that `make && sudo make install` never runs the Go toolchain as
# root.
pizauth:
	CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -ldflags "$(GOLDFLAGS)" -o pizauth .

check: check-fmt check-vet check-man check-completion check-cross check-repro check-install check-test

check-fmt:
	@out=`gofmt -l .`; if [ -n "$$out" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$out"; exit 1; fi
	@echo "gofmt: ok"

check-vet:
	$(GO) vet ./... ./examples/_demo-provider
	@for os in $(CROSS_OS); do \
		echo "GOOS=$$os go vet ./..."; \
		GOOS=$$os GOARCH=amd64 CGO_ENABLED=0 $(GO) vet ./... || exit 1; \
	done

check-test:
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

check-cross:
	@for os in $(CROSS_OS); do for arch in $(CROSS_ARCH); do \
		echo "GOOS=$$os GOARCH=$$arch go build"; \
		GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 $(GO) build -o /dev/null . || exit 1; \
	done; done

# Builds twice, the second time from a copy of the sources at another path,
# and compares the binaries: a distribution that rebuilds pizauth must get
# our bytes whatever directory it builds in. Both builds hit the build cache
# for everything but the link, so this takes about a second.
check-repro:
	@tmp=`mktemp -d`; mkdir "$$tmp/src" && \
	cp go.mod *.go "$$tmp/src/" && rm -f "$$tmp/src/"*_test.go && \
	CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -ldflags "$(GOLDFLAGS)" -o "$$tmp/a" . && \
	(cd "$$tmp/src" && CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -ldflags "$(GOLDFLAGS)" -o "$$tmp/b" .) && \
	cmp "$$tmp/a" "$$tmp/b"; st=$$?; rm -rf "$$tmp"; \
	if [ $$st -eq 0 ]; then echo "reproducible build: ok"; \
	else echo "reproducible build: two builds of this tree differ (or failed)"; fi; exit $$st

# Any mandoc message fails the check, except "referenced manual not found"
# for another project's manual: whether age(1) or mbsync(1) is installed says
# nothing about our pages. mandoc looks the references up in an empty
# directory (-W style -M), never in this machine's manuals, so a stale or
# missing mandoc.db ("outdated mandoc.db lacks msmtp(1) entry") cannot fail
# the check; it still finds references to our own two pages, which it falls
# back to looking for in the current directory, so a wrong one fails.
check-man:
	@command -v mandoc >/dev/null 2>&1 || { \
		echo "mandoc not found: install it (Debian: apt-get install mandoc)"; exit 1; }
	@empty=`mktemp -d` || exit 1; \
	out=`mandoc -Tlint -W style -M "$$empty" pizauth.1 pizauth.conf.5 2>&1 | \
		awk '!/STYLE: referenced manual not found: Xr / || / Xr pizauth(\.conf)? [0-9]/'`; \
	rmdir "$$empty"; if [ -n "$$out" ]; then echo "$$out"; exit 1; fi
	@echo "mandoc -Tlint: ok"

check-completion:
	bash -n share/completion/pizauth.bash
	@if command -v zsh >/dev/null 2>&1; then \
		echo "zsh -n share/completion/_pizauth"; \
		zsh -n share/completion/_pizauth || exit 1; \
	else echo "zsh not found: skipping the zsh completion syntax check"; fi
	@if command -v fish >/dev/null 2>&1; then \
		echo "fish -n share/completion/pizauth.fish"; \
		fish -n share/completion/pizauth.fish || exit 1; \
	else echo "fish not found: skipping the fish completion syntax check"; fi
	sh -n share/openbsd/rc.d/pizauth
	sh -n share/freebsd/rc.d/pizauth
	sh -n bench/latency.sh
	sh -n bench/memory.sh
	sh -n bench/lib.sh
	sh -n examples/demo.sh
	bash -n .ci/run

# Installs into a scratch DESTDIR with this make and, when present, with BSD
# make too, each time under umask 077, then checks that every file arrived
# with its mode and every directory is 0755, that installing again over a
# running pizauth works, and that uninstall removes everything again.
check-install: pizauth
	@tmp=`mktemp -d`; \
	(umask 077 && $(MAKE) install DESTDIR="$$tmp" PREFIX=/usr/local >/dev/null) && \
	$(MAKE) -s check-installed DESTDIR="$$tmp" PREFIX=/usr/local && \
	$(MAKE) -s check-install-busy DESTDIR="$$tmp" PREFIX=/usr/local && \
	$(MAKE) uninstall DESTDIR="$$tmp" PREFIX=/usr/local >/dev/null && \
	$(MAKE) -s check-uninstalled DESTDIR="$$tmp" PREFIX=/usr/local; \
	st=$$?; rm -rf "$$tmp"; exit $$st
	@if command -v bmake >/dev/null 2>&1; then \
		tmp=`mktemp -d`; \
		(umask 077 && MAKEFLAGS= MFLAGS= MAKELEVEL= bmake install DESTDIR="$$tmp" PREFIX=/usr/local >/dev/null) && \
		MAKEFLAGS= MFLAGS= MAKELEVEL= bmake -s check-installed DESTDIR="$$tmp" PREFIX=/usr/local && \
		MAKEFLAGS= MFLAGS= MAKELEVEL= bmake uninstall DESTDIR="$$tmp" PREFIX=/usr/local >/dev/null && \
		MAKEFLAGS= MFLAGS= MAKELEVEL= bmake -s check-uninstalled DESTDIR="$$tmp" PREFIX=/usr/local && \
		echo "install and uninstall with BSD make: ok"; \
		st=$$?; rm -rf "$$tmp"; exit $$st; \
	else echo "bmake not found: skipping the BSD make install check"; fi

INSTALLED_FILES = \
	$(BINDIR)/pizauth \
	$(MANDIR)/man1/pizauth.1 \
	$(MANDIR)/man5/pizauth.conf.5 \
	$(BASHCOMPDIR)/pizauth \
	$(ZSHCOMPDIR)/_pizauth \
	$(FISHCOMPDIR)/pizauth.fish \
	$(SYSTEMDUSERUNITDIR)/pizauth.service \
	$(EXAMPLESDIR)/pizauth.conf \
	$(EXAMPLESDIR)/openbsd/rc.d/pizauth \
	$(EXAMPLESDIR)/freebsd/rc.d/pizauth

check-installed:
	@[ -n "$(DESTDIR)" ] || { echo "check-installed needs a scratch DESTDIR"; exit 1; }
	@for f in $(INSTALLED_FILES); do \
		[ -f "$(DESTDIR)$$f" ] || { echo "install check: $$f was not installed"; exit 1; }; \
	done
	@for f in $(INSTALLED_FILES); do \
		case $$f in \
		$(BINDIR)/pizauth|*/rc.d/pizauth) want=-rwxr-xr-x ;; \
		*) want=-rw-r--r-- ;; \
		esac; \
		mode=`ls -ld "$(DESTDIR)$$f" | cut -c1-10`; \
		[ "$$mode" = "$$want" ] || { echo "install check: $$f has mode $$mode, not $$want"; exit 1; }; \
	done
	@find "$(DESTDIR)"/* -type d | while read -r d; do \
		mode=`ls -ld "$$d" | cut -c1-10`; \
		[ "$$mode" = drwxr-xr-x ] || { echo "install check: directory $$d has mode $$mode, not drwxr-xr-x"; exit 1; }; \
	done
	@if ls -a "$(DESTDIR)$(BINDIR)" | grep -q '\.new\.'; then \
		echo "install check: a temporary file was left in $(BINDIR)"; exit 1; fi
	@grep -q '^ExecStart=$(BINDIR)/pizauth server -d$$' "$(DESTDIR)$(SYSTEMDUSERUNITDIR)/pizauth.service" || { \
		echo "install check: systemd unit does not run $(BINDIR)/pizauth"; exit 1; }
	@if grep -q '@BINDIR@' "$(DESTDIR)$(SYSTEMDUSERUNITDIR)/pizauth.service"; then \
		echo "install check: @BINDIR@ left in the systemd unit"; exit 1; fi
	@echo "install check: all files installed under $(DESTDIR)$(PREFIX), with their modes"

# Installs again while the installed pizauth runs a server: copying over a
# running binary fails with "Text file busy", replacing it must not.
check-install-busy:
	@[ -n "$(DESTDIR)" ] || { echo "check-install-busy needs a scratch DESTDIR"; exit 1; }
	@run=`mktemp -d` || exit 1; \
	printf '%s\n' 'http_listen = "127.0.0.1:0";' 'https_listen = none;' \
		'account "a" {' 'auth_uri = "https://example.com/a";' \
		'token_uri = "https://example.com/t";' 'client_id = "c";' '}' > "$$run/conf"; \
	env -i PATH="$$PATH" HOME="$$run" XDG_RUNTIME_DIR="$$run" \
		"$(DESTDIR)$(BINDIR)/pizauth" server -d -c "$$run/conf" 2>/dev/null & pid=$$!; \
	i=0; while [ ! -S "$$run/pizauth/pizauth.sock" ] && [ $$i -lt 100 ]; do \
		sleep 0.1; i=`expr $$i + 1`; done; \
	if [ ! -S "$$run/pizauth/pizauth.sock" ]; then st=1; \
		echo "install check: the installed pizauth did not start a server"; \
	elif ! $(MAKE) install DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" >/dev/null; then st=1; \
		echo "install check: installing over a running pizauth failed"; \
	elif ! cmp -s pizauth "$(DESTDIR)$(BINDIR)/pizauth"; then st=1; \
		echo "install check: installing over a running pizauth left the old binary"; \
	else st=0; echo "install check: installed over a running pizauth"; fi; \
	kill $$pid 2>/dev/null; wait $$pid 2>/dev/null || :; rm -rf "$$run"; exit $$st

check-uninstalled:
	@for f in $(INSTALLED_FILES); do \
		[ ! -e "$(DESTDIR)$$f" ] || { echo "uninstall check: $$f is still there"; exit 1; }; \
	done
	@echo "uninstall check: ok"

# Each file is written under a temporary name in its directory, then renamed
# over the old one: writing into a binary that is running fails ("Text file
# busy"), and nothing ever reads a half-written file. umask 022 makes the
# directories this creates 0755 whatever the caller's umask; every file gets
# an explicit mode.
install: pizauth
	@umask 022; \
	put() { tmp="$$2.new.$$$$"; rm -f "$$tmp"; \
		if { if [ -n "$${4:-}" ]; then sed "$$4" "$$3"; else cat "$$3"; fi; } > "$$tmp" && \
			chmod "$$1" "$$tmp" && mv -f "$$tmp" "$$2"; then \
			echo "installed $$2"; else rm -f "$$tmp"; return 1; fi; }; \
	for d in "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)/man1" "$(DESTDIR)$(MANDIR)/man5" \
		"$(DESTDIR)$(BASHCOMPDIR)" "$(DESTDIR)$(ZSHCOMPDIR)" "$(DESTDIR)$(FISHCOMPDIR)" \
		"$(DESTDIR)$(SYSTEMDUSERUNITDIR)" "$(DESTDIR)$(EXAMPLESDIR)/openbsd/rc.d" \
		"$(DESTDIR)$(EXAMPLESDIR)/freebsd/rc.d"; do \
		mkdir -p "$$d" || exit 1; done; \
	put 755 "$(DESTDIR)$(BINDIR)/pizauth" pizauth && \
	put 644 "$(DESTDIR)$(MANDIR)/man1/pizauth.1" pizauth.1 && \
	put 644 "$(DESTDIR)$(MANDIR)/man5/pizauth.conf.5" pizauth.conf.5 && \
	put 644 "$(DESTDIR)$(BASHCOMPDIR)/pizauth" share/completion/pizauth.bash && \
	put 644 "$(DESTDIR)$(ZSHCOMPDIR)/_pizauth" share/completion/_pizauth && \
	put 644 "$(DESTDIR)$(FISHCOMPDIR)/pizauth.fish" share/completion/pizauth.fish && \
	put 644 "$(DESTDIR)$(SYSTEMDUSERUNITDIR)/pizauth.service" \
		share/systemd/user/pizauth.service 's|@BINDIR@|$(BINDIR)|g' && \
	put 644 "$(DESTDIR)$(EXAMPLESDIR)/pizauth.conf" examples/pizauth.conf && \
	put 755 "$(DESTDIR)$(EXAMPLESDIR)/openbsd/rc.d/pizauth" \
		share/openbsd/rc.d/pizauth 's|/usr/local/bin/pizauth|$(BINDIR)/pizauth|g' && \
	put 755 "$(DESTDIR)$(EXAMPLESDIR)/freebsd/rc.d/pizauth" \
		share/freebsd/rc.d/pizauth 's|/usr/local/bin/pizauth|$(BINDIR)/pizauth|g'

uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/pizauth" \
		"$(DESTDIR)$(MANDIR)/man1/pizauth.1" \
		"$(DESTDIR)$(MANDIR)/man5/pizauth.conf.5" \
		"$(DESTDIR)$(BASHCOMPDIR)/pizauth" \
		"$(DESTDIR)$(ZSHCOMPDIR)/_pizauth" \
		"$(DESTDIR)$(FISHCOMPDIR)/pizauth.fish" \
		"$(DESTDIR)$(SYSTEMDUSERUNITDIR)/pizauth.service" \
		"$(DESTDIR)$(EXAMPLESDIR)/pizauth.conf" \
		"$(DESTDIR)$(EXAMPLESDIR)/openbsd/rc.d/pizauth" \
		"$(DESTDIR)$(EXAMPLESDIR)/freebsd/rc.d/pizauth"
	-rmdir "$(DESTDIR)$(EXAMPLESDIR)/openbsd/rc.d" "$(DESTDIR)$(EXAMPLESDIR)/openbsd" \
		"$(DESTDIR)$(EXAMPLESDIR)/freebsd/rc.d" "$(DESTDIR)$(EXAMPLESDIR)/freebsd" \
		"$(DESTDIR)$(EXAMPLESDIR)" 2>/dev/null

# The demo's own test (TestDemo, in check-test) runs the same script
# without a terminal.
demo: all
	GO="$(GO)" sh examples/demo.sh

bench: all
	sh bench/latency.sh
	sh bench/memory.sh

bench-memory: all
	sh bench/memory.sh

clean:
	rm -f pizauth
