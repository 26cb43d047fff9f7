//! Project chores, run with `cargo run -p xtask -- <task>`.
//!
//! `man` regenerates man/sortie.1, man/sortie-control-plane.1 and the shell
//! completions in packaging/completions/ from the clap definitions of the
//! sortie library (`sortie::face::cli`) and of the control plane
//! (`sortie_control_plane::cli`), so a page can never describe flags its binary
//! does not have.
//! It also writes packaging/notices/, the third-party notices each binary
//! ships with (`notices`).
//! The test below fails when the committed files are stale.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use sortie::face::cli;

mod notices;

/// The date on the man page: the date of the last change to its text.
const DATE: &str = "2026-11-28";

/// Hand-written sections appended to the generated part of sortie(1).
const SECTIONS: &str = include_str!("sortie.1.roff");

/// The same for sortie-control-plane(1).
const CONTROL_PLANE_SECTIONS: &str = include_str!("sortie-control-plane.1.roff");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every generated file, as (path relative to the repository, contents).
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![
        (PathBuf::from("man/sortie.1"), man_page()),
        (
            PathBuf::from("man/sortie-control-plane.1"),
            control_plane_page(),
        ),
    ];
    for (shell, name) in [
        (clap_complete::Shell::Bash, "sortie.bash"),
        (clap_complete::Shell::Zsh, "_sortie"),
        (clap_complete::Shell::Fish, "sortie.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cli::Cli::command(), "sortie", &mut out);
        files.push((Path::new("packaging/completions").join(name), out));
    }
    for binary in ["sortie", "sortie-control-plane"] {
        files.push((
            Path::new("packaging/notices").join(format!("{binary}.txt")),
            notices::notices(&root(), binary),
        ));
    }
    files
}

fn man_page() -> Vec<u8> {
    page(cli::Cli::command(), "sortie", "sortie manual", SECTIONS)
}

/// sortie-control-plane(1), from the control plane's own clap definitions.
fn control_plane_page() -> Vec<u8> {
    page(
        sortie_control_plane::cli::Cli::command(),
        "sortie-control-plane",
        "sortie manual",
        CONTROL_PLANE_SECTIONS,
    )
}

/// A man page: clap_mangen's title, name, synopsis, description and options,
/// a COMMANDS section with each subcommand (and theirs) under its own heading,
/// then the hand-written `sections`.
fn page(cmd: clap::Command, bin: &str, manual: &str, sections: &str) -> Vec<u8> {
    let man = clap_mangen::Man::new(cmd.clone()).manual(manual).date(DATE);
    let mut out = Vec::new();
    man.render_title(&mut out).unwrap();
    man.render_name_section(&mut out).unwrap();
    man.render_synopsis_section(&mut out).unwrap();
    man.render_description_section(&mut out).unwrap();
    man.render_options_section(&mut out).unwrap();
    out.extend_from_slice(b".SH COMMANDS\n");
    commands(&cmd, bin, &mut out);
    out.extend_from_slice(sections.as_bytes());
    // clap_mangen puts an empty line between two breaks before a list of possible
    // values, which mandoc rightly flags; one break says the same.
    String::from_utf8(out)
        .unwrap()
        .replace(".br\n\n.br\n", ".br\n")
        .into_bytes()
}

/// Each subcommand of `cmd`, depth first, as `.SS "bin sub"` with its
/// synopsis and options.
fn commands(cmd: &clap::Command, prefix: &str, out: &mut Vec<u8>) {
    for sub in cmd.get_subcommands() {
        let name = format!("{prefix} {}", sub.get_name());
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.extend_from_slice(format!(".SS \"{name}\"\n{}\n", escape(&about)).as_bytes());
        let sub_man = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
        let mut synopsis = Vec::new();
        sub_man.render_synopsis_section(&mut synopsis).unwrap();
        let mut options = Vec::new();
        sub_man.render_options_section(&mut options).unwrap();
        // Reuse clap_mangen's rendering under this command's own heading.
        let synopsis = String::from_utf8(synopsis)
            .unwrap()
            .replace(".SH SYNOPSIS\n", ".PP\n");
        let options = String::from_utf8(options)
            .unwrap()
            .replace(".SH OPTIONS\n", ".PP\nOptions:\n");
        out.extend_from_slice(synopsis.as_bytes());
        out.extend_from_slice(options.as_bytes());
        commands(sub, &name, out);
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('-', "\\-")
}

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "man" => {
            for (path, bytes) in generated() {
                let path = root().join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, bytes).unwrap();
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: cargo run -p xtask -- man");
            ExitCode::from(64)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_man_page_and_completions_are_current() {
        for (path, bytes) in super::generated() {
            let committed = std::fs::read(super::root().join(&path)).unwrap_or_default();
            assert!(
                committed == bytes,
                "{} is stale: run `cargo run -p xtask -- man` and commit the result",
                path.display()
            );
        }
    }
}
