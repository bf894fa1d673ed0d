#!/bin/sh
# make bench-memory (and make bench): the server's resident memory and its
# CPU use while idle.
#
# Two private servers run side by side, each with its own runtime
# directory: one with 1 account, one with ACCOUNTS accounts (10,000 by
# default). A generator in perf_test.go writes each one's configuration and
# a dump giving every account an access token of ACCESS bytes and a refresh
# token of REFRESH bytes, valid for a day so that nothing is refreshed while
# the servers idle; `pizauth restore` loads it. The script then reports, from /proc/<pid>:
#
#   VmRSS once the restore is done and SETTLE seconds have passed;
#   utime+stime used over the next IDLE seconds, scaled to ms per minute;
#   VmRSS again at the end of that idle time, and VmHWM (the peak).
#
#   IDLE=60 SETTLE=5 ACCOUNTS=10000 ACCESS=2048 REFRESH=1024 sh bench/memory.sh
#
# (the defaults). The server inherits GOGC and GOMEMLIMIT, to try settings.
#
# Linux only: it reads /proc.
set -eu

cd "$(dirname "$0")/.."
. bench/lib.sh
GO=${GO:-go}
IDLE=${IDLE:-60}
SETTLE=${SETTLE:-5}
ACCOUNTS=${ACCOUNTS:-10000}
ACCESS=${ACCESS:-2048}
REFRESH=${REFRESH:-1024}

if [ ! -r /proc/self/status ]; then
	echo "bench/memory.sh: needs Linux's /proc; skipping" >&2
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pizauth-mem.XXXXXX")
pids=
cleanup() {
	for d in "$work"/s*; do
		[ -d "$d/run" ] || continue
		XDG_RUNTIME_DIR=$d/run "$work/pizauth" shutdown >/dev/null 2>&1 || :
	done
	for p in $pids; do
		reap "$p"
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
unset NOTIFY_SOCKET || :

die() {
	echo "bench: $*" >&2
	for f in "$work"/s*/server.log; do
		if [ -s "$f" ]; then
			echo "bench: $f:" >&2
			sed 's/^/  /' "$f" >&2
		fi
	done
	exit 1
}

echo "building pizauth and generating the configurations and dumps"
fresh_pizauth
"$GO" test -c -o "$work/gen.test" . >/dev/null

# status_kb PID FIELD: a field of /proc/PID/status, in KiB.
status_kb() {
	awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# cpu_ticks PID: utime+stime in clock ticks. The command name (field 2) is
# in parentheses and could hold spaces, so count from after the last ')'.
cpu_ticks() {
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

n=0
for accounts in 1 "$ACCOUNTS"; do
	n=$((n + 1))
	d=$work/s$n
	mkdir -p "$d/run"
	PIZAUTH_BENCH_DIR=$d PIZAUTH_BENCH_ACCOUNTS=$accounts \
		PIZAUTH_BENCH_ACCESS=$ACCESS PIZAUTH_BENCH_REFRESH=$REFRESH \
		"$work/gen.test" -test.run '^TestWriteMemoryBenchFiles$' >/dev/null ||
		die "generating $accounts accounts failed"
	echo "$accounts" >"$d/accounts"
	XDG_RUNTIME_DIR=$d/run "$work/pizauth" server -d -c "$d/pizauth.conf" 2>"$d/server.log" &
	echo $! >"$d/pid"
	pids="$pids $!"
	XDG_RUNTIME_DIR=$d/run retry "$work/pizauth" status ||
		die "the server with $accounts accounts did not start"
	XDG_RUNTIME_DIR=$d/run "$work/pizauth" restore <"$d/pizauth.dump" ||
		die "restoring $accounts tokens failed"
	XDG_RUNTIME_DIR=$d/run "$work/pizauth" show acct0 >/dev/null ||
		die "no token after the restore"
	XDG_RUNTIME_DIR=$d/run "$work/pizauth" show "acct$((accounts - 1))" >/dev/null ||
		die "no token after the restore"
done

sleep "$SETTLE"
for d in "$work"/s*; do
	p=$(cat "$d/pid")
	status_kb "$p" VmRSS >"$d/rss0"
	cpu_ticks "$p" >"$d/cpu0"
done
echo "idling for $IDLE s"
sleep "$IDLE"
hz=$(getconf CLK_TCK)

echo
echo "go: $("$GO" version)"
echo "machine: $(uname -sm), $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') cores"
echo "tokens: $ACCESS-byte access token, $REFRESH-byte refresh token per account"
printf '%-9s %14s %14s %14s %18s\n' accounts "RSS MiB" "RSS +${IDLE}s" "peak MiB" "idle CPU ms/min"
for d in "$work"/s*; do
	p=$(cat "$d/pid")
	kill -0 "$p" 2>/dev/null || die "a server exited while idle"
	rss1=$(status_kb "$p" VmRSS)
	hwm=$(status_kb "$p" VmHWM)
	cpu1=$(cpu_ticks "$p")
	awk -v a="$(cat "$d/accounts")" -v r0="$(cat "$d/rss0")" -v r1="$rss1" -v h="$hwm" \
		-v c0="$(cat "$d/cpu0")" -v c1="$cpu1" -v hz="$hz" -v idle="$IDLE" 'BEGIN {
		printf "%-9s %14.1f %14.1f %14.1f %18.1f\n", a, r0 / 1024, r1 / 1024, h / 1024,
			(c1 - c0) * 1000 / hz * 60 / idle
	}'
done
echo "(CPU is counted in clock ticks of $(awk -v hz="$hz" 'BEGIN { print 1000 / hz }') ms)"
