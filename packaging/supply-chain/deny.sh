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
# cargo-deny reads its database from a git checkout (it dates it by HEAD): one
# commit of the snapshot, dated as the snapshot is, at the path it expects.
dbs=$(mktemp -d)
trap 'rm -rf "$dbs"' EXIT
db=$dbs/advisory-db-3157b0e258782691
cp -R "$snapshot" "$db"
date=$(sed -n 's/^date //p' "$snapshot/SNAPSHOT")
git -C "$db" init --quiet
git -C "$db" add --all
GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date git -C "$db" \
    -c user.name=snapshot -c user.email=snapshot@localhost commit --quiet -m snapshot
echo "RustSec advisories: snapshot $(sed -n 's/^commit //p' "$snapshot/SNAPSHOT") of $date"
# cargo metadata, offline, needs every platform's crates: fetch them first.
cargo fetch --locked --quiet
SORTIE_ADVISORY_DBS=$dbs "$deny" --offline --locked --all-features \
    --config packaging/supply-chain/deny.toml \
    check --show-stats
