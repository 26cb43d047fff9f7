//! sortie: a single-shot automation runner. See sortie(1).

fn main() -> std::process::ExitCode {
    sortie::face::app::run()
}
