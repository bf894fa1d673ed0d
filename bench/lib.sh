# Shell functions shared by bench/latency.sh and bench/memory.sh; sourced,
# never run.

# retry CMD...: polls CMD every 0.1 s for up to 10 s; true once it succeeds.
retry() {
	i=0
	while [ $i -lt 100 ]; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# reap PID: gives a process that was asked to stop up to 5 s to exit, then
# kills it and collects it.
reap() {
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill "$1" 2>/dev/null || :
	wait "$1" 2>/dev/null || :
}

# fresh_pizauth: copies ./pizauth (built first if missing) into $work.
fresh_pizauth() {
	if [ ! -x ./pizauth ]; then
		${MAKE:-make} all
	fi
	cp ./pizauth "$work/pizauth"
}
