#!/bin/sh
# Build the static, self-contained sortie binary and print its path.
# musl first (x86_64-unknown-linux-musl, with Debian's musl-tools for ring's C
# code), by one of two routes:
#   - rustup's musl target, when it is installed;
#   - else Debian's newer compiler with its standard library's source
#     (rustc-web, cargo-web, rust-web-src): std is built for musl from that
#     source (-Z build-std, which RUSTC_BOOTSTRAP allows on this stable
#     compiler) and linked by musl-gcc with LLVM's libunwind (libunwind-16-dev),
#     which std links for its backtraces. That std is built without
#     symbolizing backtraces, and the binary without unwind tables: a
#     stripped, panic=abort binary has no use for either (about 0.5 MiB).
# Where neither can be had, a fully static glibc build.
# CARGO_TARGET_DIR is honoured (the tests build into their own), and so is
# SORTIE_STATIC_PROFILE: Cargo.toml's "static" by default (for size), "release"
# for speed, "static-check" in the tests (static without LTO, which builds in a
# fraction of the time).
set -eu
cd "$(dirname "$0")/.."
cargo=${CARGO:-cargo}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
profile=${SORTIE_STATIC_PROFILE:-static}
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
export CFLAGS_x86_64_unknown_linux_musl="${CFLAGS_x86_64_unknown_linux_musl:-}$zstd_fast_only -fno-asynchronous-unwind-tables -fno-unwind-tables"
export CFLAGS_x86_64_unknown_linux_gnu="${CFLAGS_x86_64_unknown_linux_gnu:-}$zstd_fast_only"
# Whether Debian's compiler (new enough for this workspace), std's source,
# musl-gcc and LLVM's static libunwind are all here.
llvm_unwind=
for a in /usr/lib/llvm-*/lib/libunwind.a; do
    [ -f "$a" ] && llvm_unwind=$a
done
debian_rust_builds_musl() {
    [ -x /usr/bin/rustc ] && [ -x /usr/bin/cargo ] && [ -n "$llvm_unwind" ] \
        && [ -d /usr/lib/rustlib/src/rust/library/std ] && command -v musl-gcc >/dev/null || return 1
    have=$(/usr/bin/rustc -vV | sed -n 's/^release: //p')
    need=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
    [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" = "$need" ]
}
# getrandom(3) named on the link line: with LTO, std's weak reference to it can
# make the getrandom crate's reference weak too, and a weak reference does not
# pull getrandom.o out of a static libc.a (the call then jumps to address 0).
pull_getrandom='-C link-arg=-Wl,--undefined=getrandom'
export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    && command -v musl-gcc >/dev/null; then
    RUSTFLAGS="$pull_getrandom ${RUSTFLAGS:-$getrandom}" \
        "$cargo" build --profile "$profile" --quiet --target x86_64-unknown-linux-musl --bin sortie
    echo "$target_dir/x86_64-unknown-linux-musl/$profile/sortie"
elif debian_rust_builds_musl; then
    # libunwind.a, with glibc's __fprintf_chk that it calls, where only the
    # linker of this build looks for it.
    unwind=$target_dir/musl-unwind
    mkdir -p "$unwind"
    cp "$llvm_unwind" "$unwind/libunwind.a"
    chmod u+w "$unwind/libunwind.a"
    musl-gcc -O2 -c packaging/musl-fortify.c -o "$unwind/fortify.o"
    ar rcs "$unwind/libunwind.a" "$unwind/fortify.o"
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
        CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=musl-gcc \
        RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static -C link-self-contained=no -L native=$unwind -C force-unwind-tables=no $pull_getrandom ${RUSTFLAGS:-$getrandom}" \
        /usr/bin/cargo build -Z build-std=std,panic_abort -Z build-std-features= --profile "$profile" --quiet \
        --target x86_64-unknown-linux-musl --bin sortie
    echo "$target_dir/x86_64-unknown-linux-musl/$profile/sortie"
else
    echo "neither the musl target nor Debian's rustc-web, rust-web-src, musl-tools and libunwind-16-dev: building a static glibc binary" >&2
    RUSTFLAGS="-C target-feature=+crt-static $pull_getrandom ${RUSTFLAGS:-$getrandom}" \
        "$cargo" build --profile "$profile" --quiet --target x86_64-unknown-linux-gnu --bin sortie
    echo "$target_dir/x86_64-unknown-linux-gnu/$profile/sortie"
fi
