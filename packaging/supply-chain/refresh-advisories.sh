#!/bin/sh
# Refresh the vendored RustSec advisory snapshot in advisory-db/: the advisories of
# every crate named in Cargo.lock (and the list of those crates, so deny.sh can
# tell when a new dependency is not covered yet), from a clone of
# https://github.com/rustsec/advisory-db (cloned here when no path is given).
# Usage: packaging/supply-chain/refresh-advisories.sh [ADVISORY_DB_CLONE]
set -eu
cd "$(dirname "$0")"
here=$PWD
lock=../../Cargo.lock
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source=${1:-}
if [ -z "$source" ]; then
    git clone --quiet --depth 1 https://github.com/rustsec/advisory-db "$work/clone"
    source=$work/clone
fi
commit=$(git -C "$source" rev-parse HEAD)
date=$(git -C "$source" show -s --format=%cI HEAD)
out=$work/advisory-db
mkdir -p "$out/crates"
git -C "$source" show HEAD:LICENSE.txt > "$out/LICENSE.txt"
sed -n 's/^name = "\(.*\)"$/\1/p' "$lock" | sort -u > "$out/covered.txt"
while read -r crate; do
    if git -C "$source" cat-file -e "HEAD:crates/$crate" 2>/dev/null; then
        git -C "$source" archive HEAD "crates/$crate" | tar -x -C "$out"
    fi
done < "$out/covered.txt"
sum=$(cd "$out" && find crates -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)
printf 'commit %s\ndate %s\nsha256 %s\n' "$commit" "$date" "$sum" > "$out/SNAPSHOT"
rm -rf "$here/advisory-db"
mv "$out" "$here/advisory-db"
echo "advisory-db: $(find "$here/advisory-db/crates" -name '*.md' | wc -l) advisories for $(wc -l < "$here/advisory-db/covered.txt") crates, snapshot of $date"
