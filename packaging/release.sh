#!/bin/sh
# Build every release artifact of this commit into target/release-artifacts/:
#   sortie-VERSION-x86_64-linux.tar.gz    the static runner, its man pages,
#                                          shell completions and systemd units
#   sortie_VERSION-1_amd64.deb            the runner's Debian package
#   sortie-control-plane_VERSION-1_amd64.deb
#   sortie-VERSION-lambda-x86_64.zip      the AWS Lambda custom runtime package
#   sortie-VERSION-oci-x86_64.tar         the FROM scratch image, an OCI archive
#                                          (podman load -i, skopeo copy oci-archive:)
#   sortie-VERSION.cdx.json               CycloneDX 1.5 SBOMs of the runner's and
#   sortie-control-plane-VERSION.cdx.json  the control plane's dependencies
#   SHA256SUMS                            of all the above
# x86_64 only: an aarch64 build needs the aarch64-unknown-linux-musl target and a
# cross linker, and this script says so when they are missing.
# Builds are stamped with the commit and dated by it (SOURCE_DATE_EPOCH), and
# name no path of the build machine, so rebuilding a commit with the same
# toolchain gives the same binaries. Needs git, podman, python3;
# cargo-deb and cargo-cyclonedx are installed into target/test-peers/cargo
# when missing.
set -eu
cd "$(dirname "$0")/.."
# What is released is a commit: artifacts from a tree with changes would carry
# its name without its content.
if [ -n "$(git status --porcelain)" ]; then
    echo "release: the work tree has changes; commit or stash them first" >&2
    exit 1
fi
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
SORTIE_BUILD_COMMIT=${SORTIE_BUILD_COMMIT:-$(git rev-parse --short=12 HEAD)}
export SOURCE_DATE_EPOCH SORTIE_BUILD_COMMIT
# Where the build ran is not part of what is built: panic locations name
# /cargo/... and /sortie/... on any machine. RUSTFLAGS replaces
# .cargo/config.toml's flags, so its getrandom backend is repeated here
# (packaging/build-static.sh adds crt-static to these).
cargo_home=${CARGO_HOME:-$HOME/.cargo}
case "$cargo_home$PWD" in
*[[:space:]]*) echo "release: CARGO_HOME and the checkout's path must have no white space" >&2; exit 1 ;;
esac
# shellcheck disable=SC2089,SC2090 # the quotes are rustc's: cargo passes them on as they are
getrandom='--cfg getrandom_backend="linux_getrandom"'
RUSTFLAGS="$getrandom --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$PWD=/sortie"
# shellcheck disable=SC2090 # as above
export RUSTFLAGS
out=$PWD/target/release-artifacts
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tools=$PWD/target/test-peers/cargo
for tool in cargo-deb@3.8.0 cargo-cyclonedx@0.5.9; do
    [ -x "$tools/bin/${tool%@*}" ] ||
        cargo install --quiet --locked --root "$tools" "$tool"
done
PATH=$tools/bin:$PATH

if rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux'; then
    echo "release: an aarch64 target is installed, but this script builds x86_64 only" >&2
else
    echo "release: x86_64 only (no aarch64-unknown-linux-musl target here)" >&2
fi

# The static runner, and the archive around it.
binary=$(sh packaging/build-static.sh)
name=sortie-$version-x86_64-linux
stage=$work/$name
mkdir -p "$stage/man" "$stage/completions" "$stage/systemd"
cp "$binary" "$stage/sortie"
cp man/sortie.1 man/sortie-protocol.7 man/sortie-plugins.7 "$stage/man/"
cp packaging/completions/* "$stage/completions/"
cp packaging/systemd/sortie.service packaging/systemd/sortie.timer \
    packaging/systemd/sortie-failure@.service packaging/systemd/sortie.env.example "$stage/systemd/"
cp README.md LICENSE "$stage/"
cp packaging/notices/sortie.txt "$stage/THIRD-PARTY-NOTICES"
tar -C "$work" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 \
    --numeric-owner --mode=u=rwX,go=rX -cf - "$name" | gzip -n -9 > "$out/$name.tar.gz"

# The Debian packages, from release builds of both programs.
for package in sortie sortie-control-plane; do
    cargo deb --quiet --locked --package "$package" --output "$out" >/dev/null
done

# The Lambda package (packaging/lambda/build.sh reuses the static binary).
cp "$(sh packaging/lambda/build.sh)" "$out/sortie-$version-lambda-x86_64.zip"

# The OCI image: packaging/container/Dockerfile over the static binary, built
# and saved by podman in a storage of its own (vfs: no privileges needed).
mkdir "$work/image" "$work/podman"
cp "$binary" "$work/image/sortie"
cp /etc/ssl/certs/ca-certificates.crt "$work/image/"
cp LICENSE "$work/image/"
cp packaging/notices/sortie.txt "$work/image/THIRD-PARTY-NOTICES"
printf '[engine]\ncgroup_manager = "cgroupfs"\n' > "$work/podman/containers.conf"
podman_private() {
    CONTAINERS_CONF=$work/podman/containers.conf podman --root "$work/podman/root" \
        --runroot "$work/podman/run" --storage-driver vfs "$@"
}
podman_private build --quiet --timestamp "$SOURCE_DATE_EPOCH" \
    -t "localhost/sortie:$version" -f packaging/container/Dockerfile "$work/image" >/dev/null
podman_private save --quiet --format oci-archive -o "$out/sortie-$version-oci-x86_64.tar" \
    "localhost/sortie:$version"

# SBOMs: cargo-cyclonedx writes one beside each workspace member's manifest.
cargo cyclonedx --quiet --format json --spec-version 1.5 --no-build-deps \
    --target x86_64-unknown-linux-gnu --override-filename release-sbom.cdx
mv release-sbom.cdx.json "$out/sortie-$version.cdx.json"
mv control-plane/release-sbom.cdx.json "$out/sortie-control-plane-$version.cdx.json"
rm -f protocol/release-sbom.cdx.json xtask/release-sbom.cdx.json

(cd "$out" && sha256sum -- * > SHA256SUMS)
ls -l "$out"
