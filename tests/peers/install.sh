#!/bin/sh
# Install the real peers the checks and tests run, as listed in
# tests/peers/commands.tsv: Debian packages (deb:), and into target/test-peers/ a
# Python venv (pip:), npm packages (npm:) and the AWS Lambda Runtime Interface
# Emulator taken from the aws-sam-cli wheel (wheel:), and cargo subcommands
# built from crates.io (cargo:). Idempotent: does nothing once they are there.
set -eu
cd "$(dirname "$0")/../.."
list=tests/peers/commands.tsv
# Cargo subcommands (cargo:CRATE@VERSION), built from crates.io into
# target/test-peers/cargo/bin — in the background, while the downloads below go on.
mkdir -p target/test-peers
cargo_log=target/test-peers/cargo-install.log
(
    awk -F '\t' '!/^#/ && $2 ~ /^cargo:/ { sub(/^cargo:/, "", $2); print $1, $2 }' "$list" |
        while read -r command crate; do
            [ -x "target/test-peers/cargo/bin/$command" ] ||
                cargo install --quiet --locked --force --root target/test-peers/cargo "$crate"
        done
) >"$cargo_log" 2>&1 &
cargo_builds=$!
# Debian packages whose command is missing.
missing=$(awk -F '\t' '!/^#/ && $2 ~ /^deb:/ { sub(/^deb:/, "", $2); print $1, $2 }' "$list" |
    while read -r command package; do
        command -v "$command" >/dev/null || printf ' %s' "$package"
    done)
# PostgreSQL's server commands live in /usr/lib/postgresql/VERSION/bin.
missing="$missing$(awk -F '\t' '!/^#/ && $2 ~ /^pgbin:/ { sub(/^pgbin:/, "", $2); print $1, $2 }' "$list" |
    while read -r command package; do
        ls /usr/lib/postgresql/*/bin/"$command" >/dev/null 2>&1 || printf ' %s' "$package"
    done | tr ' ' '\n' | sort -u | tr '\n' ' ')"
missing=$(echo "$missing" | xargs)
if [ -n "$missing" ]; then
    missing=" $missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "install these Debian packages first:$missing" >&2
        exit 1
    fi
    apt-get update -q
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi
venv=target/test-peers/venv
pips=$(awk -F '\t' '!/^#/ && $2 ~ /^pip:./ { sub(/^pip:/, "", $2); print $2 }' "$list")
absent=$(awk -F '\t' '!/^#/ && $2 ~ /^pip:/ { print $1 }' "$list" |
    while read -r command; do
        [ -x "$venv/bin/$command" ] || echo "$command"
    done)
if [ -n "$absent" ]; then
    mkdir -p target/test-peers
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # a list of package names
    "$venv/bin/pip" install --quiet --disable-pip-version-check $pips
    "$venv/bin/bao" version
fi
# npm packages a test loads into a page (npm:), in target/test-peers/node_modules.
awk -F '\t' '!/^#/ && $2 ~ /^npm:/ { sub(/^npm:/, "", $2); print $2 }' "$list" |
    while read -r package; do
        [ -d "target/test-peers/node_modules/$package" ] ||
            npm install --silent --no-audit --no-fund --prefix target/test-peers "$package"
    done
# The AWS Lambda Runtime Interface Emulator ships inside the aws-sam-cli wheel.
rie=target/test-peers/aws-lambda-rie
if [ ! -x "$rie" ]; then
    wheels=$(mktemp -d)
    "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$wheels" aws-sam-cli
    "$venv/bin/python" - "$wheels" "$rie" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/aws_sam_cli-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("samcli/local/rapid/aws-lambda-rie-x86_64"))
PY
    chmod +x "$rie"
    rm -rf "$wheels"
fi
if ! wait "$cargo_builds"; then
    cat "$cargo_log" >&2
    echo "building the cargo subcommands of $list failed" >&2
    exit 1
fi
