#!/bin/sh
# Build the Lambda deployment package: a zip with the static binary as `bootstrap`
# at its root, for a custom runtime (provided.al2023). Prints the zip's path.
set -eu
cd "$(dirname "$0")/../.."
binary=$(sh packaging/build-static.sh)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$binary" "$stage/bootstrap"
out="$PWD/target/sortie-lambda.zip"
rm -f "$out"
cp LICENSE "$stage/"
cp packaging/notices/sortie.txt "$stage/THIRD-PARTY-NOTICES"
# Dated by SOURCE_DATE_EPOCH when set (packaging/release.sh), as the binary is.
[ -z "${SOURCE_DATE_EPOCH:-}" ] ||
    touch -d "@$SOURCE_DATE_EPOCH" "$stage/bootstrap" "$stage/LICENSE" "$stage/THIRD-PARTY-NOTICES"
(cd "$stage" && python3 -m zipfile -c "$out" bootstrap LICENSE THIRD-PARTY-NOTICES)
echo "$out"
