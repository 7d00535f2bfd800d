//! The tools around the command line: shell completions that load in a
//! real bash and complete commands and flags, manual pages generated from
//! the same definitions (one per command), `--help` examples, and bad
//! arguments to them refused. No daemon, no network.

mod common;

use std::process::Command;
use std::time::Duration;

use common::harness::*;

const T: Duration = Duration::from_secs(30);

fn lanyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lanyard"))
}

/// What bash's completion function offers for the words typed so far.
fn complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let arr: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let prog = format!(
        "source '{}' && COMP_WORDS=({}) && COMP_CWORD={cword} && COMP_LINE='{}' && COMP_POINT=${{#COMP_LINE}} && \
         _lanyard lanyard '{}' '{}' && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        arr.join(" "),
        words.join(" "),
        words[cword],
        words[cword.saturating_sub(1)],
    );
    let o = output_within(Command::new("bash").arg("--norc").arg("-c").arg(prog), T);
    assert_ok(&o, "bash completion");
    stdout(&o).lines().map(str::to_string).collect()
}

#[test]
fn bash_completions_load_and_complete_commands_and_flags() {
    let dir = std::env::temp_dir().join(format!("lanyard-cli-tools-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = output_within(lanyard().args(["completions", "bash"]), T);
    assert_ok(&o, "completions bash");
    let script = dir.join("lanyard.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    // It loads, and registers itself for `lanyard`.
    let o = output_within(
        Command::new("bash").arg("--norc").arg("-c").arg(format!(
            "source '{}' && complete -p lanyard",
            script.display()
        )),
        T,
    );
    assert_ok(&o, "complete -p lanyard");
    assert!(stdout(&o).contains("_lanyard"), "{}", stdout(&o));
    assert_eq!(complete(&script, &["lanyard", "ru"]), ["run"]);
    let net = complete(&script, &["lanyard", "network", ""]);
    for sub in [
        "create",
        "inspect",
        "connect",
        "disconnect",
        "ls",
        "rm",
        "prune",
    ] {
        assert!(net.iter().any(|w| w == sub), "{sub} in {net:?}");
    }
    assert!(complete(&script, &["lanyard", "run", "--add"]).contains(&"--add-host".to_string()));
    assert!(complete(&script, &["lanyard", "daemon", "--met"]).contains(&"--metrics".to_string()));
    // The hidden helper command is not offered.
    let all = complete(&script, &["lanyard", ""]);
    assert!(all.iter().any(|w| w == "daemon"), "{all:?}");
    assert!(!all.iter().any(|w| w.starts_with("__")), "{all:?}");
    // zsh and fish scripts are made too; an unknown shell is refused.
    for sh in ["zsh", "fish", "elvish", "powershell"] {
        let o = output_within(lanyard().args(["completions", sh]), T);
        assert_ok(&o, sh);
        assert!(stdout(&o).contains("lanyard"), "{sh}");
    }
    let o = output_within(lanyard().args(["completions", "tcsh"]), T);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("tcsh"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn manual_pages_cover_every_command_and_help_shows_examples() {
    let o = output_within(lanyard().arg("man"), T);
    assert_ok(&o, "man");
    let page = stdout(&o);
    assert!(page.contains(".TH lanyard 1"), "{page}");
    assert!(page.contains("lanyard\\-run(1)"), "{page}");
    let dir = std::env::temp_dir().join(format!("lanyard-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let o = output_within(lanyard().args(["man", "--dir", dir.to_str().unwrap()]), T);
    assert_ok(&o, "man --dir");
    for p in [
        "lanyard.1",
        "lanyard-run.1",
        "lanyard-daemon.1",
        "lanyard-network-create.1",
        "lanyard-network-connect.1",
        "lanyard-port-add.1",
        "lanyard-stats.1",
    ] {
        let text = std::fs::read_to_string(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{p}");
    }
    let run = std::fs::read_to_string(dir.join("lanyard-run.1")).unwrap();
    assert!(run.contains("\\-\\-add\\-host"), "{run}");
    assert!(run.contains("Examples:"), "{run}");
    assert!(!dir.join("lanyard-__container-tap.1").exists());
    // A directory that is not one: exit 2, named.
    let o = output_within(lanyard().args(["man", "--dir", "/nonexistent/x"]), T);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/x"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
    for (cmd, example) in [
        (vec!["run", "--help"], "lanyard run --name web -p 8080:80"),
        (vec!["daemon", "--help"], "--metrics 127.0.0.1:9184"),
        (vec!["network", "create", "--help"], "--ip-range"),
        (
            vec!["port", "add", "--help"],
            "lanyard port add web 8080:80",
        ),
    ] {
        let o = output_within(lanyard().args(&cmd), T);
        assert_ok(&o, &format!("{cmd:?}"));
        assert!(stdout(&o).contains(example), "{cmd:?}: {}", stdout(&o));
    }
}
