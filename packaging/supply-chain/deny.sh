#!/bin/sh
# Supply-chain checks with cargo-deny, offline, against the vendored RustSec
# snapshot (advisory-db/, see refresh-advisories.sh): advisories (vulnerable,
# unmaintained, unsound, yanked), licenses, bans (duplicate TLS and crypto
# crates) and sources (crates.io only). Run by .ci/run.
# Usage: packaging/supply-chain/deny.sh [CARGO_DENY]
set -eu
cd "$(dirname "$0")/../.."
deny=${1:-cargo-deny}
snapshot=packaging/supply-chain/advisory-db
# Every crate in Cargo.lock must be one the snapshot was taken for.
missing=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.lock | sort -u | comm -23 - "$snapshot/covered.txt")
if [ -n "$missing" ]; then
    echo "the advisory snapshot does not cover these crates of Cargo.lock: $(echo "$missing" | tr '\n' ' ')" >&2
    echo "run packaging/supply-chain/refresh-advisories.sh" >&2
    exit 1
fi
# The snapshot is whole (every advisory file it was taken with, unchanged) and
# recent: taken in the last 180 days, not in the future.
sum=$(cd "$snapshot" && find crates -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ "$sum" != "$(sed -n 's/^sha256 //p' "$snapshot/SNAPSHOT")" ]; then
    echo "the advisory snapshot was changed after it was taken: run packaging/supply-chain/refresh-advisories.sh" >&2
    exit 1
fi
date=$(sed -n 's/^date //p' "$snapshot/SNAPSHOT")
taken=$(date -d "$date" +%s 2>/dev/null) || taken=
now=$(date +%s)
if [ -z "$date" ] || [ -z "$taken" ] || [ "$taken" -gt "$now" ] ||
    [ $((now - taken)) -gt $((180 * 86400)) ]; then
    echo "the advisory snapshot's date '$date' is not within the last 180 days: run packaging/supply-chain/refresh-advisories.sh" >&2
    exit 1
fi
# cargo-deny reads its database from a git checkout (it dates it by HEAD and
# by HEAD's file): one commit of the snapshot, dated as the snapshot is, at the
# path it expects.
dbs=$(mktemp -d)
trap 'rm -rf "$dbs"' EXIT
trap 'exit 130' INT TERM HUP
db=$dbs/advisory-db-3157b0e258782691
cp -R "$snapshot" "$db"
git -C "$db" init --quiet
git -C "$db" add --all
GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date git -C "$db" \
    -c user.name=snapshot -c user.email=snapshot@localhost commit --quiet -m snapshot
touch -d "$date" "$db/.git/HEAD" "$db/.git/FETCH_HEAD"
echo "RustSec advisories: snapshot $(sed -n 's/^commit //p' "$snapshot/SNAPSHOT") of $date ($(( (now - taken) / 86400 )) days old)"
# cargo metadata, offline, needs every platform's crates: fetch them first.
cargo fetch --locked --quiet
SORTIE_ADVISORY_DBS=$dbs "$deny" --offline --locked --all-features \
    --config packaging/supply-chain/deny.toml \
    check --show-stats --hide-inclusion-graph
