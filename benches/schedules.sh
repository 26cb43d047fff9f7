#!/usr/bin/env bash
# The scheduler's cost and punctuality (benches/schedules.py): the control
# plane's idle CPU with no definitions (the baseline, same run), then with 5,000
# and 20,000 scheduled definitions beside three every-second ones, and how late
# those were queued and whether a second was missed. Release build, SQLite.
#
#   benches/schedules.sh [N ...]      (default: 5000 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building (release) ..." >&2
cargo build -q --release -p sortie-control-plane
[[ $# -gt 0 ]] || set -- 5000 20000
python3 benches/schedules.py target/release/sortie-control-plane "$@"
