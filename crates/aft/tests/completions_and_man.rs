//! Shell completions and man pages through the real binary: made from the same command
//! definitions, so every subcommand and option is there.

mod support;

use std::process::{Command, Stdio};

use support::Aft;

#[test]
fn completion_scripts_cover_the_commands_and_bash_accepts_its_script() {
    let aft = Aft::new();
    let bash = aft.ok(&["completions", "bash"]);
    for word in [
        "schedule",
        "watcher",
        "--retry-safe",
        "--allow-file-runs",
        "--log-format",
    ] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let file = aft.write("aft.bash", &bash);
    let checked = Command::new("bash").args(["-n", &file]).status().unwrap();
    assert!(checked.success(), "bash -n refused the completion script");
    // What bash offers after a line typed so far (COMP_WORDS), as at a prompt: the
    // subcommands' arguments, defined only when a subcommand runs, and `help`'s tree two
    // levels deep.
    let offered = |words: &str| {
        let script = format!(
            "source {file}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _aft aft \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
             echo \"${{COMPREPLY[*]}}\""
        );
        let out = Command::new("bash").args(["-c", &script]).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(offered("aft run --p").trim(), "--params");
    let admin = offered("aft help admin ''");
    for sub in ["create", "delete", "list", "passwd"] {
        assert!(
            admin.split_whitespace().any(|w| w == sub),
            "aft help admin: {admin}"
        );
    }
    assert!(aft.ok(&["completions", "zsh"]).starts_with("#compdef aft"));
    assert!(aft.ok(&["completions", "fish"]).contains("complete -c aft"));
    assert!(
        aft.ok(&["completions", "powershell"])
            .contains("Register-ArgumentCompleter")
    );
    aft.fails(&["completions", "tcsh"], 2);
}

#[test]
fn man_pages_exist_for_every_subcommand_and_render() {
    let aft = Aft::new();
    let dir = aft.path("man");
    let said = aft.ok(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(said.contains("man pages written"), "{said}");
    for page in [
        "aft.1",
        "aft-run.1",
        "aft-schedule-add.1",
        "aft-admin-passwd.1",
        "aft-vfs-types.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is not a man page"
        );
    }
    // man itself renders one (Debian's man-db), as a user would read it.
    let out = Command::new("man")
        .args(["-l", dir.join("aft-run.1").to_str().unwrap()])
        .env("MANWIDTH", "80")
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("SYNOPSIS") && text.contains("--file"),
        "{text}"
    );
}
