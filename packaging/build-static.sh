#!/bin/sh
# Build the static, self-contained sortie binary and print its path.
# musl first (x86_64-unknown-linux-musl, with Debian's musl-tools for ring's C
# code); where that target cannot be installed, a fully static glibc build.
# CARGO_TARGET_DIR is honoured (the tests build into their own), and so is
# SORTIE_STATIC_PROFILE (default release; the tests use static-check, the same
# binary without LTO, which builds in a fraction of the time).
set -eu
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
profile=${SORTIE_STATIC_PROFILE:-release}
# RUSTFLAGS replaces .cargo/config.toml's flags, so its getrandom backend is repeated
# here, unless the caller's RUSTFLAGS (packaging/release.sh) already carry it.
getrandom='--cfg getrandom_backend="linux_getrandom"'
# sortie compresses log uploads at zstd level 1 only, which is zstd's "fast"
# strategy: its other block compressors are dead weight (about 330 KiB).
# zstd falls back to the nearest strategy built for a level that would use one.
zstd_fast_only=""
for strategy in DFAST GREEDY LAZY LAZY2 BTLAZY2 BTOPT BTULTRA; do
    zstd_fast_only="$zstd_fast_only -DZSTD_EXCLUDE_${strategy}_BLOCK_COMPRESSOR"
done
export CFLAGS_x86_64_unknown_linux_musl="${CFLAGS_x86_64_unknown_linux_musl:-}$zstd_fast_only"
export CFLAGS_x86_64_unknown_linux_gnu="${CFLAGS_x86_64_unknown_linux_gnu:-}$zstd_fast_only"
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    && command -v musl-gcc >/dev/null; then
    "$cargo" build --profile "$profile" --quiet --target x86_64-unknown-linux-musl --bin sortie
    echo "$target_dir/x86_64-unknown-linux-musl/$profile/sortie"
else
    echo "the musl target or musl-gcc is missing: building a static glibc binary" >&2
    RUSTFLAGS="-C target-feature=+crt-static ${RUSTFLAGS:-$getrandom}" \
        "$cargo" build --profile "$profile" --quiet --target x86_64-unknown-linux-gnu --bin sortie
    echo "$target_dir/x86_64-unknown-linux-gnu/$profile/sortie"
fi
