#!/usr/bin/env bash
# Where the time of #19's paths goes: `perf record` of the release binaries
# (built with symbols into target/profile-symbols) on
#   P2  50 one-job shots (a `true` step) against the control plane over TLS,
#   P3  1 GiB of 100-byte lines with 100 secrets, to the spool (with and
#       without multi-line events) and to the control plane over TLS (the
#       runner and the control plane apart; multi-line events),
# and a text summary of each in benches/results/: the share of samples by
# thread and by function. Needs perf (Debian's linux-perf) and root or
# kernel.perf_event_paranoid <= 1. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "needs perf" >&2; exit 2; }
CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    CARGO_TARGET_DIR=$PWD/target/profile-symbols \
    cargo build --release --quiet -p sortie -p sortie-control-plane
bin=$PWD/target/profile-symbols/release
results=$PWD/benches/results
mkdir -p "$results"

# shellcheck source=benches/lib.sh
. benches/lib.sh
make_work profile
start_control_plane "$bin/sortie-control-plane"

# summarize DATA TITLE OUT [perf report options...]
summarize() {
    local data=$1 title=$2 out=$3
    shift 3
    {
        echo "# $title"
        echo "# $(git log -1 --format='commit %h, %cd' --date=short), $(nproc) CPUs, $(uname -r)"
        echo
        echo "## samples by thread"
        perf report -i "$data" --stdio --no-children --sort comm -g none "$@" 2>/dev/null |
            grep '%' | sed -n '1,12p'
        echo
        echo "## samples by function (the first 40)"
        perf report -i "$data" --stdio --no-children --sort comm,dso,sym -g none "$@" 2>/dev/null |
            grep '%' | sed -n '1,40p'
    } >"$out"
    echo "wrote $out"
}

# --- P2: one-job shots ---------------------------------------------------------
for i in $(seq 50); do enqueue "{\"id\": \"p2-$i\", \"steps\": [{\"exec\": [\"true\"]}]}"; done
perf record -q -g -o "$work/p2.data" -- bash -c "
    for i in \$(seq 50); do
        '$bin/sortie' -q poll --server '$url' --ca-file '$ca' --token-file '$work/runner-token' \
            --state-dir '$work/p2' --runner-id profile --max-jobs 1
    done" >/dev/null 2>&1
summarize "$work/p2.data" "P2: 50 one-job shots over TLS (runner side, bash and true included)" \
    "$results/p2-perf.txt"

# --- P3: 1 GiB with 100 secrets ------------------------------------------------
line=$(printf 'x%.0s' $(seq 99))
secrets=""
env_secrets=()
for i in $(seq 100); do
    secrets="$secrets\"S$i\":\"env:S$i\","
    env_secrets+=("SORTIE_SECRET_S$i=profile-secret-value-$i-$RANDOM$RANDOM")
done
job() { # ID
    printf '{"id":"%s","secrets":{%s},"steps":[{"exec":["sh","-c","yes %s | head -c %s"]}]}' \
        "$1" "${secrets%,}" "$line" $((1024 * 1024 * 1024))
}
mkdir -p "$work/spool/pending"
job spool >"$work/spool/pending/spool.json"
env "${env_secrets[@]}" perf record -q -o "$work/p3-spool.data" -- "$bin/sortie" -q poll \
    --server "dir:$work/spool" --state-dir "$work/p3-spool" --runner-id profile >/dev/null 2>&1
summarize "$work/p3-spool.data" "P3: 1 GiB with 100 secrets to the spool" "$results/p3-spool-perf.txt"
mkdir -p "$work/mspool/pending"
touch "$work/mspool/log-multiline"
job mspool >"$work/mspool/pending/mspool.json"
env "${env_secrets[@]}" perf record -q -o "$work/p3-mspool.data" -- "$bin/sortie" -q poll \
    --server "dir:$work/mspool" --state-dir "$work/p3-mspool" --runner-id profile >/dev/null 2>&1
summarize "$work/p3-mspool.data" "P3: 1 GiB with 100 secrets to a spool offering multi-line events" \
    "$results/p3-spool-multiline-perf.txt"

enqueue "$(job tls)"
perf record -q -o "$work/p3-cp.data" -p "$cp_pid" 2>/dev/null &
cp_perf=$!
env "${env_secrets[@]}" perf record -q -o "$work/p3-tls.data" -- "$bin/sortie" -q poll \
    --server "$url" --ca-file "$ca" --token-file "$work/runner-token" \
    --state-dir "$work/p3-tls" --runner-id profile >/dev/null 2>&1
kill -INT "$cp_perf"
wait "$cp_perf" || true
summarize "$work/p3-tls.data" "P3: 1 GiB with 100 secrets to the control plane over TLS, the runner" \
    "$results/p3-tls-runner-perf.txt"
summarize "$work/p3-cp.data" "P3: the same, the control plane meanwhile" "$results/p3-tls-cp-perf.txt"
