#!/bin/sh
# `make demo`: pizauth against a small OAuth2 provider on this machine
# (examples/_demo-provider), so that you can watch it obtain, hand out and
# refresh a token without an account anywhere. Everything lives in a
# temporary directory with its own HOME and XDG_RUNTIME_DIR, so a pizauth
# server of yours is never touched. Everything the demo starts is stopped
# when it ends or is interrupted (Ctrl-C).
#
# PIZAUTH names the binary to run (default: ./pizauth, which `make demo`
# builds first) and GO the Go command that builds the provider.
# Without a terminal (standard input at end of file) the demo does not
# wait for Enter: the script plays the browser at once.

set -u
here=$(cd "$(dirname "$0")/.." && pwd) || exit 1
PIZAUTH=${PIZAUTH:-$here/pizauth}
GO=${GO:-go}
case $PIZAUTH in /*) ;; *) PIZAUTH=$(pwd)/$PIZAUTH ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pizauth-demo.XXXXXX") || exit 1
provider_pid=
server_pid=
cleanup() {
	trap - EXIT INT TERM HUP
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
	if [ -n "$provider_pid" ]; then kill "$provider_pid" 2>/dev/null; wait "$provider_pid" 2>/dev/null; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo; echo "Interrupted: stopping everything the demo started."; exit 130' INT TERM HUP

say() { printf '\n== %s\n' "$*"; }
fail() {
	echo "demo: $*" >&2
	for f in "$tmp/provider.log" "$tmp/server.log"; do
		[ -s "$f" ] && { echo "--- $f" >&2; cat "$f" >&2; }
	done
	exit 1
}
run() { echo "\$ pizauth $*"; "$PIZAUTH" "$@"; }

[ -x "$PIZAUTH" ] || fail "no pizauth binary at $PIZAUTH (run 'make demo', or 'make' first)"

say "Building and starting the demo provider, a small OAuth2 server on this machine."
(cd "$here" && "$GO" build -o "$tmp/demo-provider" ./examples/_demo-provider) || fail "could not build the demo provider"
"$tmp/demo-provider" -expires 10 >"$tmp/provider.addr" 2>"$tmp/provider.log" &
provider_pid=$!
i=0
until [ -s "$tmp/provider.addr" ]; do
	i=$((i + 1)); [ $i -le 100 ] || fail "the demo provider did not start"
	sleep 0.1
done
addr=$(head -n 1 "$tmp/provider.addr")
echo "The demo provider (pid $provider_pid) listens on $addr; its tokens live 10 seconds."

mkdir -m 700 "$tmp/home" "$tmp/run" || exit 1
HOME=$tmp/home XDG_RUNTIME_DIR=$tmp/run
export HOME XDG_RUNTIME_DIR
unset XDG_CONFIG_HOME
cat >"$tmp/pizauth.conf" <<EOF
http_listen = "127.0.0.1:0";
https_listen = none;
account "demo" {
    auth_uri = "$addr/authorize";
    token_uri = "$addr/token";
    client_id = "pizauth-demo";
    scopes = ["demo-mail"];
    refresh_before_expiry = 5s;
}
EOF

say "Starting pizauth with this configuration, and a runtime directory of its own in $tmp:"
sed 's/^/    /' "$tmp/pizauth.conf"
"$PIZAUTH" server -d -vv -c "$tmp/pizauth.conf" 2>"$tmp/server.log" &
server_pid=$!
i=0
until "$PIZAUTH" status >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -le 100 ] || fail "pizauth server did not start"
	sleep 0.1
done
echo "pizauth server (pid $server_pid) is running."

say "A mail program asks for a token. There is none yet, so pizauth answers with the URL that logs you in:"
out=$(run show demo 2>&1)
echo "$out"
url=$(printf '%s\n' "$out" | sed -n 's/.* with URL //p')
[ -n "$url" ] || fail "pizauth show did not print a URL"

say "Open that URL in a browser on this machine and click Allow, or press Enter and this script plays the browser."
read -r _ || true
if ! "$PIZAUTH" show demo >/dev/null 2>&1; then
	"$tmp/demo-provider" -browse "$url" || fail "could not log in at $url"
fi
i=0
until "$PIZAUTH" show demo >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -le 100 ] || fail "pizauth got no token"
	sleep 0.1
done

say "pizauth now has a token, and gives it at once to every program that asks:"
run show demo
first=$("$PIZAUTH" show demo)

say "pizauth status tells what state each account is in:"
run status

say "pizauth refreshes the token 5 seconds before it expires, without asking you again. Waiting for that..."
i=0
while tok=$("$PIZAUTH" show demo 2>/dev/null) && [ "$tok" = "$first" ]; do
	i=$((i + 1)); [ $i -le 300 ] || fail "the token was not refreshed within 30 seconds"
	sleep 0.1
done
[ -n "$tok" ] || fail "pizauth show failed while waiting for the refresh"
run show demo
run status

say "Stopping the pizauth server:"
run shutdown || fail "pizauth shutdown failed"
wait "$server_pid"
server_pid=

say "Done: the demo provider stops and the temporary directory goes. To use pizauth with your own accounts, see "Quick start" in README.md."
