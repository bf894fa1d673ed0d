#!/bin/sh
# make bench: whole-process latency of `pizauth show` beside two floors.
#
#   floor-min     a Go program that only sends one show request over the
#                 socket and prints the reply (bench/_floor/main.go);
#   floor-linked  the same program plus blank imports of every standard
#                 package pizauth links, so it pays the same package inits.
#
# A private server (its own runtime directory) gets a token from a local
# fake provider (bench/_provider), then bench/_timer runs the three commands
# interleaved in short rounds and prints median and p99 for each.
# ROUNDS and RUNS (runs per command per round) set the sample size:
#   ROUNDS=30 RUNS=10 sh bench/latency.sh     (the default: 300 runs each)
set -eu

cd "$(dirname "$0")/.."
. bench/lib.sh
GO=${GO:-go}
ROUNDS=${ROUNDS:-30}
RUNS=${RUNS:-10}

work=$(mktemp -d "${TMPDIR:-/tmp}/pizauth-bench.XXXXXX")
provider_pid=
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then
		"$work/pizauth" shutdown >/dev/null 2>&1 || :
		reap "$server_pid"
	fi
	if [ -n "$provider_pid" ]; then
		kill "$provider_pid" 2>/dev/null || :
		wait "$provider_pid" 2>/dev/null || :
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Everything below talks to the private server only.
XDG_RUNTIME_DIR=$work/run
export XDG_RUNTIME_DIR
unset NOTIFY_SOCKET || :

die() {
	echo "bench: $*" >&2
	if [ -s "$work/server.log" ]; then
		echo "bench: server log:" >&2
		sed 's/^/  /' "$work/server.log" >&2
	fi
	exit 1
}

echo "building pizauth, the floors, the fake provider and the timer"
fresh_pizauth
build() {
	CGO_ENABLED=0 "$GO" build -trimpath -buildvcs=false -ldflags "-s -w -buildid=" "$@"
}
build -o "$work/floor-min" ./bench/_floor
build -o "$work/provider" ./bench/_provider
build -o "$work/timer" ./bench/_timer

# floor-linked: the floor's source plus a blank import of each standard
# package in pizauth's dependency graph (internal and vendored ones cannot be
# imported, and are linked anyway through the packages that use them).
mkdir "$work/linked"
cp bench/_floor/main.go "$work/linked/main.go"
{
	echo "package main"
	echo
	echo "import ("
	CGO_ENABLED=0 "$GO" list -deps -f '{{if .Standard}}{{.ImportPath}}{{end}}' . |
		grep -v -e '^$' -e '^internal/' -e '/internal/' -e '/internal$' -e '^vendor/' |
		sed 's/.*/	_ "&"/'
	echo ")"
} >"$work/linked/deps.go"
printf 'module floorlinked\n\ngo %s\n' "$(sed -n 's/^go //p' go.mod)" >"$work/linked/go.mod"
(cd "$work/linked" && build -o "$work/floor-linked" .)

"$work/provider" >"$work/provider.addr" 2>"$work/provider.log" &
provider_pid=$!
retry test -s "$work/provider.addr" || die "the fake provider did not start"
addr=$(cat "$work/provider.addr")

cat >"$work/pizauth.conf" <<EOF
https_listen = none;
account "bench" {
    auth_uri = "http://$addr/authorize";
    token_uri = "http://$addr/token";
    client_id = "bench-client";
    redirect_uri = "http://127.0.0.1/";
}
EOF

"$work/pizauth" server -d -c "$work/pizauth.conf" 2>"$work/server.log" &
server_pid=$!
retry "$work/pizauth" status || die "the server did not start"

url=$("$work/pizauth" show bench 2>&1 >/dev/null |
	sed -n 's/^ERROR - Token unavailable until authorised with URL //p')
[ -n "$url" ] || die "pizauth show did not give an authorisation URL"
curl -fsS -L -o /dev/null "$url" || die "following the authorisation URL failed"
retry "$work/pizauth" show bench || die "no token after authorisation"
token=$("$work/pizauth" show bench)
for f in floor-min floor-linked; do
	out=$("$work/$f" bench) || die "$f failed"
	case $out in
	*"$token"*) ;;
	*) die "$f did not get the token: $out" ;;
	esac
done

echo
echo "go: $("$GO" version)"
echo "machine: $(uname -sm), $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') cores"
for f in pizauth floor-linked floor-min; do
	printf '%-14s %9d bytes\n' "$f" "$(wc -c <"$work/$f")"
done
# Package initialisation on the show path (GODEBUG=inittrace=1): the sum of
# the per-package clock times, and the slowest packages of pizauth.
for f in pizauth floor-linked floor-min; do
	case $f in
	pizauth) cmd="$work/pizauth show" ;;
	*) cmd="$work/$f" ;;
	esac
	GODEBUG=inittrace=1 $cmd bench 2>&1 >/dev/null |
		awk -v f="$f" '/^init / { t += $5; n++ } END { printf "%-14s %9.3f ms in %d package inits\n", f, t, n }'
done
echo "slowest inits in pizauth show:"
GODEBUG=inittrace=1 "$work/pizauth" show bench 2>&1 >/dev/null |
	awk '/^init / { printf "  %-40s %7.3f ms %8d bytes\n", $2, $5, $8 }' | sort -k2 -rn | head -5

echo
echo "timing $ROUNDS rounds x $RUNS runs of each command, interleaved:"
"$work/timer" -rounds "$ROUNDS" -runs "$RUNS" \
	"pizauth=$work/pizauth show bench" \
	"floor-linked=$work/floor-linked bench" \
	"floor-min=$work/floor-min bench"
