#!/bin/sh
# Build the sortie image: the static binary and the host's CA bundle, FROM scratch.
# Usage: packaging/container/build.sh [TAG] (podman, or docker if podman is absent)
set -eu
cd "$(dirname "$0")/../.."
tag=${1:-sortie:latest}
binary=$(sh packaging/build-static.sh)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$binary" "$stage/sortie"
cp /etc/ssl/certs/ca-certificates.crt "$stage/"
if command -v podman >/dev/null; then
    podman build -t "$tag" -f packaging/container/Dockerfile "$stage"
else
    docker build -t "$tag" -f packaging/container/Dockerfile "$stage"
fi
