#!/bin/sh
# Build sortie and run one real shot on the embedded spool with the example jobs
# in fixtures/: no server to set up. Prints each job's log and result.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin sortie
work=$(mktemp -d "${TMPDIR:-/tmp}/sortie-try.XXXXXX")
./target/release/sortie spool init "$work/spool"
cp fixtures/*.json "$work/spool/pending/"
echo "== one shot: sortie poll --server dir:$work/spool --max-jobs 10"
./target/release/sortie poll --server "dir:$work/spool" --state-dir "$work/state" --max-jobs 10
for dir in "$work"/spool/done/*/; do
    id=$(basename "$dir")
    echo
    echo "== $id: log ($dir/log.ndjson)"
    cat "$dir/log.ndjson"
    echo "== $id: result"
    cat "$dir/result.json"
done
echo
echo "The spool is kept in $work/spool"
