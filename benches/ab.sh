#!/usr/bin/env bash
# Two sortie binaries, A and B, on P1 (an empty shot) and P2 (a one-job shot),
# against one control plane, their shots alternating: a change's effect told
# from the machine's noise, which both sides share.
#
#   benches/ab.sh A-BINARY B-BINARY [SHOTS]    (default 31 shots of each, per row)
#
# Prints the median, min and max of each side, in ms, and B's median over A's.
# A measurement, not a test. Needs curl; the control plane is this tree's
# release build.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/lib.sh
. benches/lib.sh

[[ $# -ge 2 ]] || { echo "usage: benches/ab.sh A-BINARY B-BINARY [SHOTS]" >&2; exit 64; }
# shellcheck disable=SC2034 # a and b are read as ${!side}
a=$(realpath "$1") b=$(realpath "$2") shots=${3:-31}
cargo build --release -q -p sortie-control-plane
make_work ab
start_control_plane target/release/sortie-control-plane

shot() { # shot BINARY STATE-DIR
    "$1" -q poll --server "$url" --ca-file "$ca" --token-file "$work/runner-token" \
        --state-dir "$2" --runner-id "ab-${2##*/}" >/dev/null 2>&1 || true
}

row "row (times in ms)" "median" "min" "max" "B / A"
for p in P1 P2; do
    ta=() tb=()
    for side in a b; do # warm-up
        [[ $p == P2 ]] && enqueue "{\"id\":\"$side-warm\",\"steps\":[{\"exec\":[\"true\"]}]}"
        shot "${!side}" "$work/$p-$side"
    done
    for i in $(seq "$shots"); do
        for side in a b; do
            [[ $p == P2 ]] && enqueue "{\"id\":\"$side-$i\",\"steps\":[{\"exec\":[\"true\"]}]}"
            t=$(time_ms shot "${!side}" "$work/$p-$side")
            if [[ $side == a ]]; then ta+=("$t"); else tb+=("$t"); fi
        done
    done
    read -r a_med a_min a_max <<<"$(stats "${ta[@]}")"
    read -r b_med b_min b_max <<<"$(stats "${tb[@]}")"
    row "$p A: $1" "$a_med" "$a_min" "$a_max" ""
    row "$p B: $2" "$b_med" "$b_min" "$b_max" "$(ratio "$b_med" "$a_med")"
done
