# Helpers shared by the benchmark scripts (sourced, not run).
# shellcheck shell=bash

# now_ns: the time in nanoseconds (to the microsecond), from bash's own clock.
now_ns() { echo "${EPOCHREALTIME//[^0-9]/}000"; }

# stats VALUES...: "median min max".
stats() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%s %s %s", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

# time_ms CMD...: wall time of one run in milliseconds. The clock is read by
# bash itself, right before and after: reading it with date(1) put two more
# processes inside every timing, about 1.3 ms that each row paid alike.
time_ms() {
    local t0 t1
    t0=${EPOCHREALTIME//[^0-9]/}
    "$@" >/dev/null 2>&1 || true
    t1=${EPOCHREALTIME//[^0-9]/}
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e3 }'
}

# repeat N CMD...: one warm-up, then N timings, one per line.
repeat() {
    local n=$1
    shift
    "$@" >/dev/null 2>&1 || true
    for _ in $(seq "$n"); do time_ms "$@"; echo; done
}

# Rows are printed as they are measured, so a long run shows its progress.
row() { printf '%-52s %12s %12s %12s  %s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# make_work NAME: a private work directory in $work, removed on exit with the
# control plane start_control_plane starts there (cp_pid) stopped first.
# shellcheck disable=SC2034 # work and cp_pid are the caller's
make_work() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/sortie-$1.XXXXXX")
    cp_pid=
    trap remove_work EXIT
}
remove_work() {
    [[ -n $cp_pid ]] && kill "$cp_pid" 2>/dev/null
    rm -rf "$work"
}

# start_control_plane BINARY: the reference control plane over TLS on a loopback
# port, its state in $work/cp, its tokens in $work; sets cp_pid, url, ca, admin
# (the caller's EXIT trap kills cp_pid) and enqueue JSON-SPEC.
# shellcheck disable=SC2034,SC2154 # work is the caller's; cp_pid, ca, admin are for it
start_control_plane() {
    head -c 24 /dev/urandom | base64 >"$work/admin-token"
    head -c 24 /dev/urandom | base64 >"$work/runner-token"
    mkfifo "$work/cp.out"
    "$1" --listen 127.0.0.1:0 --state-dir "$work/cp" \
        --admin-token-file "$work/admin-token" --runner-token-file "$work/runner-token" \
        --ack-window 60s >"$work/cp.out" 2>"$work/cp.err" &
    cp_pid=$!
    read -r _ _ url <"$work/cp.out"
    ca=$work/cp/tls/ca.pem
    admin="Authorization: Bearer $(cat "$work/admin-token")"
}

enqueue() { # enqueue JSON-SPEC
    curl -sS -o /dev/null --cacert "$ca" -H "$admin" -d "{\"spec\": $1}" "${url}admin/jobs"
}
