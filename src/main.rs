//! The `lanyard` binary: the command line in `cli`, everything else in the
//! library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
