//! `lanyard completions SHELL` and `lanyard man`: shell completions and
//! manual pages, generated from the clap definitions, so they never drift
//! from what the command line accepts.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use lanyard::daemon::{EXIT_FAILED, EXIT_USAGE};

use super::Cli;

#[derive(Args)]
pub(super) struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

#[derive(Args)]
pub(super) struct ManArgs {
    /// Write lanyard.1 and a page per command (lanyard-run.1, ...) into DIR
    /// instead of lanyard.1 to stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The command tree as users see it: the hidden internal commands left
/// out (clap_complete's bash script would offer them).
fn visible() -> clap::Command {
    let full = Cli::command();
    let subs: Vec<clap::Command> = full
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut cmd = clap::Command::new("lanyard")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .subcommands(subs);
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd
}

/// Prints the completion script (`source <(lanyard completions bash)`).
pub(super) fn completions(a: CompletionsArgs) -> u8 {
    let mut cmd = visible();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "lanyard", &mut out);
    write_stdout(&out)
}

/// Prints lanyard(1), or writes every page into `--dir`.
pub(super) fn man(a: ManArgs) -> u8 {
    let cmd = visible();
    match a.dir {
        None => {
            let mut out = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
                eprintln!("lanyard: rendering the manual page: {e}");
                return EXIT_FAILED;
            }
            write_stdout(&out)
        }
        Some(dir) => {
            if !dir.is_dir() {
                eprintln!("lanyard: --dir {}: not a directory", dir.display());
                return EXIT_USAGE;
            }
            match clap_mangen::generate_to(cmd, &dir) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("lanyard: --dir {}: {e}", dir.display());
                    EXIT_FAILED
                }
            }
        }
    }
}

fn write_stdout(bytes: &[u8]) -> u8 {
    if let Err(e) = std::io::stdout().lock().write_all(bytes) {
        super::stdout_failed(e);
    }
    0
}
