# Helpers shared by the benchmark scripts (sourced, not run).
# shellcheck shell=bash

now_ns() { date +%s%N; }

# stats VALUES...: "median min max".
stats() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%s %s %s", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

# time_ms CMD...: wall time of one run in milliseconds.
time_ms() {
    local t0 t1
    t0=$(now_ns)
    "$@" >/dev/null 2>&1 || true
    t1=$(now_ns)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'
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
