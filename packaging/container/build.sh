#!/bin/sh
# Build the sortie image: the static binary and the host's CA bundle, FROM scratch;
# with --tools, the image of Dockerfile.tools (Debian slim with bash, ssh, curl and
# CA certificates; add kubectl with KUBECTL_VERSION=v1.31.0).
# Usage: packaging/container/build.sh [--tools] [TAG]
#   the tag defaults to sortie:VERSION or sortie-tools:VERSION (Cargo.toml's version);
#   podman, or docker if podman is absent.
set -eu
cd "$(dirname "$0")/../.."
dockerfile=packaging/container/Dockerfile
name=sortie
if [ "${1:-}" = --tools ]; then
    dockerfile=packaging/container/Dockerfile.tools
    name=sortie-tools
    shift
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
tag=${1:-$name:$version}
binary=$(sh packaging/build-static.sh)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$binary" "$stage/sortie"
cp /etc/ssl/certs/ca-certificates.crt "$stage/"
cp LICENSE "$stage/"
cp packaging/notices/sortie.txt "$stage/THIRD-PARTY-NOTICES"
set -- build -t "$tag" -f "$dockerfile"
if [ "$name" = sortie-tools ]; then
    set -- "$@" --build-arg "KUBECTL_VERSION=${KUBECTL_VERSION:-}"
fi
if command -v podman >/dev/null; then
    podman "$@" "$stage"
else
    docker "$@" "$stage"
fi
