#!/bin/sh
# Build the static, self-contained sortie binary and print its path.
# musl first (x86_64-unknown-linux-musl, with Debian's musl-tools for ring's C
# code); where that target cannot be installed, a fully static glibc build.
set -eu
cd "$(dirname "$0")/.."
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    && command -v musl-gcc >/dev/null; then
    cargo build --release --quiet --target x86_64-unknown-linux-musl --bin sortie
    echo "$PWD/target/x86_64-unknown-linux-musl/release/sortie"
else
    echo "the musl target or musl-gcc is missing: building a static glibc binary" >&2
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --quiet --target x86_64-unknown-linux-gnu --bin sortie
    echo "$PWD/target/x86_64-unknown-linux-gnu/release/sortie"
fi
