//! What a program started with `RunProgram` sees of the service's environment, through the
//! real binary: PATH, HOME and LANG only, unless the script asks for more.

mod support;

use support::Aft;

#[test]
fn run_program_gets_a_clean_environment_unless_asked() {
    let aft = Aft::allowing_cli_run();
    let script = aft.write(
        "env.syncjs",
        r#"
var plain = RunProgram("env", []);
var added = RunProgram("env", [], { Env: { EXTRA: "given" } });
var all = RunProgram("env", [], { InheritEnv: true });
var empty = RunProgram("/usr/bin/env", [], { ClearEnv: true });
Log("PLAIN[" + plain.Stdout.split("\n").sort().join(",") + "]");
Log("ADDED[" + added.Stdout.split("\n").sort().join(",") + "]");
Log("ALL[" + all.Stdout.split("\n").sort().join(",") + "]");
Log("EMPTY[" + empty.Stdout.trim() + "]");
"#,
    );
    let out = aft
        .command(&["run", "-f", &script])
        .env("AFT_TEST_PRIVATE", "must-not-leak")
        .env("HOME", "/root")
        .output()
        .unwrap();
    let log = support::text(&out);
    assert!(out.status.success(), "{log}");
    let section = |name: &str| -> String {
        let start = log.find(&format!("{name}[")).unwrap() + name.len() + 1;
        log[start..start + log[start..].find(']').unwrap()].to_string()
    };
    let plain = section("PLAIN");
    assert!(
        plain.contains("PATH=") && plain.contains("HOME=/root"),
        "{plain}"
    );
    assert!(!plain.contains("AFT_TEST_PRIVATE"), "{plain}");
    let names: Vec<&str> = plain
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| v.split('=').next().unwrap())
        .collect();
    assert!(
        names.iter().all(|n| ["PATH", "HOME", "LANG"].contains(n)),
        "{names:?}"
    );
    assert!(section("ADDED").contains("EXTRA=given"));
    assert!(section("ALL").contains("AFT_TEST_PRIVATE=must-not-leak"));
    assert_eq!(section("EMPTY"), "");
}
