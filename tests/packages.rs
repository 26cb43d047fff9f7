//! The Debian packages as a platform team installs them: built by cargo-deb from
//! this build's binaries, checked by lintian, installed by dpkg into a root of
//! their own (no maintainer script may touch this host), then looked at the way
//! an operator would — `sortie --version` from the installed path, the units
//! through `systemd-analyze verify`, the pages through `man -w`, the completions
//! through bash — and removed, leaving the conffiles and nothing else; purged,
//! leaving nothing.
//!
//! The packages are built from the debug binaries the suite runs (cargo-deb's
//! `--profile dev`, stripped as in a release): what is tested is the packaging,
//! and packaging/release.sh builds the same metadata from release binaries.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd`; its stdout, or a panic with everything it said.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Both binaries of this build, as `(sortie, sortie-control-plane)`. The control
/// plane's is the workspace build's, beside the runner's (README's test command
/// builds both); one from another commit is refused, not packaged.
fn binaries() -> (PathBuf, PathBuf) {
    let sortie = PathBuf::from(env!("CARGO_BIN_EXE_sortie"));
    let control_plane = sortie.with_file_name("sortie-control-plane");
    assert!(
        control_plane.exists(),
        "{} is missing: build the workspace (cargo test --workspace)",
        control_plane.display()
    );
    let version = |bin: &Path| {
        let text = run(Command::new(bin).arg("--version"));
        text.split_once(' ').unwrap().1.trim().to_owned()
    };
    assert_eq!(
        version(&sortie),
        version(&control_plane),
        "{} is from another build: build the workspace again",
        control_plane.display()
    );
    (sortie, control_plane)
}

/// The two .deb files, built by cargo-deb into `out` from a staging target dir
/// holding this build's binaries (a nested cargo build would wait on the lock of
/// the one running these tests).
fn build_debs(out: &Path) -> Vec<PathBuf> {
    let (sortie, control_plane) = binaries();
    let staging = tempfile::tempdir().unwrap();
    fs::create_dir(staging.path().join("debug")).unwrap();
    fs::copy(sortie, staging.path().join("debug/sortie")).unwrap();
    fs::copy(
        control_plane,
        staging.path().join("debug/sortie-control-plane"),
    )
    .unwrap();
    ["sortie", "sortie-control-plane"]
        .into_iter()
        .map(|package| {
            let path = run(Command::new(peer("cargo-deb"))
                .current_dir(repo())
                .env("CARGO", env!("CARGO"))
                .env("CARGO_TARGET_DIR", staging.path())
                .args(["deb", "--quiet", "--no-build", "--profile", "dev", "--fast"])
                .args(["--package", package, "--output"])
                .arg(out));
            PathBuf::from(path.trim())
        })
        .collect()
}

/// A field of a package's control file.
fn field(deb: &Path, name: &str) -> String {
    run(Command::new("dpkg-deb")
        .args(["--field"])
        .arg(deb)
        .arg(name))
    .trim()
    .to_owned()
}

/// An empty root dpkg can install into: a package database that holds only the
/// packages `names` (as this Debian host has them, so the packages' Depends are
/// checked against real versions), systemd's own units (for verify) and a shell.
fn new_root(names: &BTreeSet<String>) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dpkg = root.path().join("var/lib/dpkg");
    for dir in ["info", "updates"] {
        fs::create_dir_all(dpkg.join(dir)).unwrap();
    }
    fs::create_dir_all(root.path().join("var/log")).unwrap();
    fs::write(dpkg.join("available"), "").unwrap();
    let status = run(Command::new("dpkg-query").arg("--status").args(names));
    fs::write(dpkg.join("status"), status).unwrap();
    for line in run(Command::new("dpkg-query")
        .args(["--show", "--showformat", "${binary:Package}\\n"])
        .args(names))
    .lines()
    {
        fs::write(dpkg.join(format!("info/{line}.list")), "").unwrap();
    }
    fs::create_dir_all(root.path().join("usr/lib/systemd")).unwrap();
    run(Command::new("cp")
        .args(["-a", "/usr/lib/systemd/system"])
        .arg(root.path().join("usr/lib/systemd/")));
    fs::create_dir(root.path().join("bin")).unwrap();
    fs::copy(
        fs::canonicalize("/bin/sh").unwrap(),
        root.path().join("bin/sh"),
    )
    .unwrap();
    root
}

/// Every path under `root` but dpkg's own database and log.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            if relative.starts_with("var/lib/dpkg") || relative.starts_with("var/log") {
                continue;
            }
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            }
            out.insert(relative);
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

fn dpkg(root: &Path) -> Command {
    let mut cmd = Command::new("dpkg");
    // Maintainer scripts run outside the root with DPKG_ROOT set, which they
    // honour by leaving the host's systemd alone.
    cmd.arg(format!("--root={}", root.display()))
        .arg("--force-script-chrootless");
    cmd
}

#[test]
fn the_debian_packages_pass_lintian_install_verify_and_remove_cleanly() {
    let out = tempfile::tempdir().unwrap();
    let debs = build_debs(out.path());
    for deb in &debs {
        eprintln!(
            "{}: {} bytes",
            deb.file_name().unwrap().to_string_lossy(),
            fs::metadata(deb).unwrap().len()
        );
    }

    // lintian: no error and no warning but those its overrides explain.
    let lint = run(Command::new("lintian")
        .args(["--fail-on", "error,warning"])
        .args(&debs));
    eprintln!("lintian:\n{lint}");

    // Each package depends on what Debian has; the root knows exactly those.
    let mut depends = BTreeSet::new();
    for deb in &debs {
        for dependency in field(deb, "Depends").split(',') {
            let name = dependency.split_whitespace().next().unwrap();
            depends.insert(name.to_owned());
        }
    }
    assert!(depends.contains("libc6"), "{depends:?}");
    let root = new_root(&depends);
    let before = tree(root.path());
    run(dpkg(root.path()).arg("--install").args(&debs));
    let r = root.path();

    // The installed binaries run and say which build they are.
    let version = run(Command::new(r.join("usr/bin/sortie")).arg("--version"));
    assert!(
        version.starts_with(&format!("sortie {} (commit ", env!("CARGO_PKG_VERSION")))
            && version.contains(", built 20"),
        "{version}"
    );
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .unwrap();
    if commit.status.success() {
        let commit = String::from_utf8_lossy(&commit.stdout);
        assert!(version.contains(commit.trim()), "{version} vs {commit}");
    }
    let version = run(Command::new(r.join("usr/bin/sortie-control-plane")).arg("--version"));
    assert!(version.starts_with("sortie-control-plane "), "{version}");

    // GCC's unwinder is linked in (build.rs): neither binary loads libgcc_s.
    for bin in ["sortie", "sortie-control-plane"] {
        let loaded = Command::new(r.join("usr/bin").join(bin))
            .arg("--version")
            .env("LD_DEBUG", "libs")
            .output()
            .unwrap();
        let loaded = String::from_utf8_lossy(&loaded.stderr);
        assert!(loaded.contains("libc.so.6"), "{bin}: {loaded}");
        assert!(!loaded.contains("libgcc_s"), "{bin}: {loaded}");
    }

    // systemd accepts the installed units as they are (their binaries and man
    // pages are those of the root), and none is enabled or started.
    let units = [
        "sortie.service",
        "sortie.timer",
        "sortie-failure@.service",
        "sortie-control-plane.service",
    ];
    for unit in units {
        assert!(
            r.join("usr/lib/systemd/system").join(unit).is_file(),
            "{unit}"
        );
    }
    let verify = Command::new("systemd-analyze")
        .env("MANPATH", r.join("usr/share/man"))
        .arg(format!("--root={}", r.display()))
        .arg("verify")
        .args(units)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(!r.join("etc/systemd").exists(), "a unit was enabled");

    // man finds every page; the shells find the completions.
    for (section, page) in [
        ("1", "sortie"),
        ("1", "sortie-control-plane"),
        ("7", "sortie-protocol"),
        ("7", "sortie-plugins"),
    ] {
        let found = run(Command::new("man")
            .env("MANPATH", r.join("usr/share/man"))
            .args(["-w", section, page]));
        assert_eq!(
            Path::new(found.trim()),
            r.join(format!("usr/share/man/man{section}/{page}.{section}.gz"))
        );
    }
    let complete = run(Command::new("bash").arg("-c").arg(format!(
        "source {}/usr/share/bash-completion/completions/sortie && complete -p sortie",
        r.display()
    )));
    assert!(complete.contains("-F _sortie"), "{complete}");
    assert!(r.join("usr/share/zsh/vendor-completions/_sortie").is_file());
    assert!(r
        .join("usr/share/fish/vendor_completions.d/sortie.fish")
        .is_file());

    // Each package carries the notices of the crates its binary links.
    for (package, linked) in [("sortie", "rustls"), ("sortie-control-plane", "tokio")] {
        let notices = fs::read_to_string(
            r.join("usr/share/doc")
                .join(package)
                .join("THIRD-PARTY-NOTICES"),
        )
        .unwrap();
        assert!(notices.contains(&format!("\n{linked} ")), "{package}");
    }

    // The settings files are conffiles: an administrator's edit survives a
    // reinstall of the package.
    let env_file = r.join("etc/sortie/sortie.env");
    // Root's alone: an administrator may put a credential in the settings.
    for file in [
        &env_file,
        &r.join("etc/sortie-control-plane/control-plane.env"),
    ] {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(file).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, meta.uid()),
            (0o600, 0),
            "{}",
            file.display()
        );
    }
    let conffiles = run(dpkg(r).args(["--status", "sortie"]));
    assert!(
        conffiles.contains("\n /etc/sortie/sortie.env "),
        "{conffiles}"
    );
    let mut edited = fs::read_to_string(&env_file).unwrap();
    edited.push_str("SORTIE_SERVER=https://cp.test/\n");
    fs::write(&env_file, &edited).unwrap();
    run(dpkg(r).arg("--install").arg(&debs[0]));
    assert_eq!(fs::read_to_string(&env_file).unwrap(), edited);

    // Removal leaves the conffiles (and their directories) and nothing else;
    // purge leaves the root as it was.
    run(dpkg(r).args(["--remove", "sortie", "sortie-control-plane"]));
    let left: BTreeSet<_> = tree(r).difference(&before).cloned().collect();
    let conffiles: BTreeSet<PathBuf> = [
        "etc",
        "etc/sortie",
        "etc/sortie/sortie.env",
        "etc/sortie-control-plane",
        "etc/sortie-control-plane/control-plane.env",
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(left, conffiles);
    run(dpkg(r).args(["--purge", "sortie", "sortie-control-plane"]));
    let left: BTreeSet<_> = tree(r).difference(&before).cloned().collect();
    assert!(left.iter().all(|p| p == Path::new("etc")), "{left:?}");

    // Installed again, enabled and run (their state dirs as DynamicUser= leaves
    // them), then purged: not even the enablement or the state is left, so a
    // later install starts disabled and empty.
    run(dpkg(r).arg("--install").args(&debs));
    run(Command::new("systemctl")
        .arg(format!("--root={}", r.display()))
        .args(["enable", "sortie.timer", "sortie-control-plane.service"]));
    for state in ["sortie", "sortie-control-plane"] {
        fs::create_dir_all(r.join("var/lib/private").join(state)).unwrap();
        fs::write(r.join("var/lib/private").join(state).join("data"), "x").unwrap();
        std::os::unix::fs::symlink(
            Path::new("private").join(state),
            r.join("var/lib").join(state),
        )
        .unwrap();
    }
    assert!(r
        .join("etc/systemd/system/timers.target.wants/sortie.timer")
        .is_symlink());
    run(dpkg(r).args(["--purge", "sortie", "sortie-control-plane"]));
    let left: BTreeSet<_> = tree(r).difference(&before).cloned().collect();
    let dirs_only = left
        .iter()
        .all(|p| r.join(p).is_dir() && !r.join(p).is_symlink());
    assert!(dirs_only, "{left:?}");
}
