//! Stamps the binary with what `--version` shows beside the version: the git
//! commit it was built from and the date it was built, so a report from the field
//! names the exact source.
//!
//! The date is `SOURCE_DATE_EPOCH`'s when that is set (packaging/release.sh sets
//! it to the commit's time, so the same commit always builds the same bytes),
//! else today's. The commit is `SORTIE_BUILD_COMMIT`'s when set (a build from a
//! source archive has no git), else git's, else "unknown". The control plane's
//! manifest points at this same script.
//!
//! On Linux with glibc it also links GCC's unwinder statically (`libgcc_eh.a`,
//! what `gcc -static-libgcc` does) instead of loading `libgcc_s.so.1`: see
//! [`static_unwinder`].

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=SORTIE_BUILD_COMMIT");
    static_unwinder();
    let commit = std::env::var("SORTIE_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .inspect(|c| {
            // It becomes part of a cargo directive and of `--version`'s line.
            assert!(
                c.len() <= 64
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                "SORTIE_BUILD_COMMIT is not a commit name ([A-Za-z0-9._-], at most 64)"
            );
        })
        .or_else(|| {
            watch_head();
            git(&["rev-parse", "--short=12", "HEAD"])
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let seconds = match std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .filter(|e| !e.is_empty())
    {
        Some(epoch) => epoch
            .trim()
            .parse::<i64>()
            .expect("SOURCE_DATE_EPOCH is not a number of seconds"),
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    };
    let (year, month, day) = civil_date(seconds.div_euclid(86_400));
    println!("cargo:rustc-env=SORTIE_BUILD=commit {commit}, built {year:04}-{month:02}-{day:02}");
}

/// Link GCC's unwinder into the binary, so that it needs no `libgcc_s.so.1`.
///
/// Rust's standard library links `libgcc_s` for the unwinder its backtraces
/// use. Loading it costs every process a library to map and relocate, and its
/// constructor (`__cpu_indicator_init`) asks the CPU for its features with
/// `cpuid`, an instruction a virtual machine traps: 3.6 to 5 µs each on the
/// machines sortie is measured on. Together, 0.28 ms of a 3 ms empty shot.
/// `libgcc_eh.a` is the same unwinder as an archive; named here, it comes on the
/// link line before the standard library's `-lgcc_s`, so every `_Unwind_*`
/// symbol is taken from it and `--as-needed` drops `libgcc_s`. A static glibc
/// build (`crt-static`) already links it so, and musl builds use LLVM's.
///
/// GCC 12's archive finds unwind tables with glibc 2.35's `_dl_find_object`,
/// so the binary needs glibc 2.35 where it needed 2.34. The Debian package's
/// `Depends` says so; the only Debian or Ubuntu release with 2.34 was Ubuntu
/// 21.10, long out of support. RHEL 9 and its rebuilds and Amazon Linux 2023
/// have 2.34: there, run the static binary, as every other release artifact
/// (the tarball, the Lambda package, the image) does.
fn static_unwinder() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && !var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static")
    {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}

/// `git` in the package's directory; None when git or the repository is missing.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (output.status.success() && !text.is_empty()).then(|| text.to_owned())
}

/// Run again when HEAD moves: HEAD itself, the branch it names, packed refs.
/// Only files that exist are named (cargo reruns always for a missing one).
fn watch_head() {
    let Some(dir) = git(&["rev-parse", "--git-common-dir"]) else {
        return;
    };
    let dir = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join(dir);
    let mut files = vec![dir.join("HEAD"), dir.join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        files.push(dir.join(branch));
    }
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        files.push(
            Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join(head),
        );
    }
    for file in files.iter().filter(|f| f.is_file()) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
}

/// (year, month, day) of a count of days since 1970-01-01 (proleptic Gregorian),
/// by Howard Hinnant's `civil_from_days`.
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
