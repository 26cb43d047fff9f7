#!/usr/bin/env bash
# sortie's benchmarks: each scenario beside a baseline measured in the same run.
#
#   benches/run.sh            the default run (a few minutes)
#   benches/run.sh --long     larger outputs and more repetitions
#
# Prints one table: median, min and max of several runs after a warm-up, and the
# ratio to the baseline. These are measurements, not tests: nothing here fails on
# a number. The machine is shared and noisy, so compare ratios, not absolutes.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5
big=$((1024 * 1024 * 1024))
if [[ ${1:-} == --long ]]; then
    runs=11
fi
small=$((10 * 1024 * 1024))

command -v /usr/bin/time >/dev/null || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }
cargo build --release --quiet --bin sortie
sortie=$PWD/target/release/sortie
work=$(mktemp -d "${TMPDIR:-/tmp}/sortie-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
line=$(printf 'x%.0s' $(seq 99))

# now_ns: monotonic-enough wall clock in nanoseconds.
now_ns() { date +%s%N; }

# stats NAME VALUES...: "median min max" of the values.
stats() {
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%s %s %s", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

# time_ms CMD...: wall time of one run in milliseconds (fractional).
time_ms() {
    local t0 t1
    t0=$(now_ns)
    "$@" >/dev/null 2>&1
    t1=$(now_ns)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'
}

# repeat N CMD...: N timed runs after one warm-up; prints the times.
repeat() {
    local n=$1
    shift
    "$@" >/dev/null 2>&1 || true
    for _ in $(seq "$n"); do time_ms "$@"; echo; done
}

rows=()
row() { rows+=("$(printf '%-44s %12s %12s %12s %14s' "$@")"); }

# A job that prints SIZE bytes of 100-byte lines, placed in a fresh spool.
spool_job() {
    local size=$1 dir=$2
    rm -rf "$dir"
    mkdir -p "$dir/spool/pending"
    cat >"$dir/spool/pending/out.json" <<JSON
{"id":"out","steps":[{"exec":["sh","-c","yes $line | head -c $size"]}]}
JSON
}

shot() {
    local dir=$1
    "$sortie" -q poll --server "dir:$dir/spool" --state-dir "$dir/state" --runner-id bench
}

baseline_cat() { yes "$line" | head -c "$1" | cat >"$work/cat.out"; }

# --- throughput: 1 GiB of 100-byte lines through the spool, vs cat
t_sortie=()
t_cat=()
for _ in $(seq "$runs"); do
    spool_job "$big" "$work/t"
    t_sortie+=("$(time_ms shot "$work/t")")
    t_cat+=("$(time_ms baseline_cat "$big")")
done
read -r s_med s_min s_max <<<"$(stats "${t_sortie[@]}")"
read -r c_med c_min c_max <<<"$(stats "${t_cat[@]}")"
mib=$((big / 1024 / 1024))
tp() { awk -v ms="$1" -v mib="$mib" 'BEGIN { printf "%.0f MiB/s", mib / (ms / 1000) }'; }
row "scenario" "median" "min" "max" "vs baseline"
row "cat: ${mib} MiB of 100-byte lines to a file" "$(tp "$c_med")" "$(tp "$c_max")" "$(tp "$c_min")" "1"
row "sortie: the same job to the spool" "$(tp "$s_med")" "$(tp "$s_max")" "$(tp "$s_min")" \
    "$(awk -v a="$c_med" -v b="$s_med" 'BEGIN { printf "%.2f x cat", a / b }')"

# --- memory: peak RSS of the big run and of a 10 MiB run
rss() {
    spool_job "$1" "$work/m"
    /usr/bin/time -f '%M' -o "$work/rss" "$sortie" -q poll --server "dir:$work/m/spool" \
        --state-dir "$work/m/state" --runner-id bench
    cat "$work/rss"
}
rss_big=$(rss "$big")
rss_small=$(rss "$small")
row "peak RSS, ${mib} MiB job (KiB)" "$rss_big" "" "" "$((rss_big - rss_small)) KiB more"
row "peak RSS, 10 MiB job (KiB)" "$rss_small" "" "" ""

# --- overhead of a one-step `true` job vs running true directly
cat >"$work/true.json" <<'JSON'
{"id":"t","steps":[{"exec":["true"]}]}
JSON
mapfile -t t_job < <(repeat $((runs * 10)) "$sortie" -q exec "$work/true.json")
mapfile -t t_true < <(repeat $((runs * 10)) true)
read -r j_med j_min j_max <<<"$(stats "${t_job[@]}")"
read -r b_med b_min b_max <<<"$(stats "${t_true[@]}")"
row "true, run directly (ms)" "$b_med" "$b_min" "$b_max" "1"
row "sortie exec of a one-step true job (ms)" "$j_med" "$j_min" "$j_max" \
    "$(awk -v a="$b_med" -v b="$j_med" 'BEGIN { printf "+%.2f ms", b - a }')"

printf '%s\n' "${rows[@]}"
