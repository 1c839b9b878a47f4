//! Retention through the binary: `job-retention-max-jobs` caps the ended jobs a service
//! keeps, newest first, and leaves queued and running jobs alone; schedules' slot histories
//! go with the jobs.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Aft, poll};

fn job_ids(aft: &Aft) -> Vec<String> {
    let jobs: Value = serde_json::from_str(&aft.ok(&["jobs", "list", "--json"])).unwrap();
    jobs.as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_service_keeps_only_the_newest_ended_jobs_the_cap_allows() {
    let aft = Aft::allowing_cli_run();
    let script = aft.write("one.syncjs", r#"Log("run " + Param("n"));"#);
    for n in 0..5 {
        let params = format!(r#"{{"n":"{n}"}}"#);
        aft.ok(&["run", "-f", &script, "-p", &params]);
        // Distinct end times: the cap keeps whole milliseconds.
        std::thread::sleep(Duration::from_millis(5));
    }
    let all = job_ids(&aft);
    assert_eq!(all.len(), 5, "{all:?}");

    let refused = aft.fails(&["settings", "set", "job-retention-max-jobs", "many"], 1);
    assert!(refused.contains("job-retention-max-jobs"), "{refused}");
    aft.ok(&["settings", "set", "job-retention-max-jobs", "2"]);
    let shown = aft.ok(&["settings", "get", "job-retention-max-jobs"]);
    assert!(shown.contains('2'), "{shown}");

    // Nothing is purged without a service; a starting service purges at once.
    assert_eq!(job_ids(&aft).len(), 5);
    let _service = aft.serve();
    let kept = poll(Duration::from_secs(30), || {
        let ids = job_ids(&aft);
        (ids.len() == 2).then_some(ids)
    })
    .unwrap_or_else(|| panic!("the cap was not applied: {:?}", job_ids(&aft)));
    // `jobs list` is newest first: the two last runs are the ones kept.
    assert_eq!(kept, all[..2].to_vec());
    for purged in &all[2..] {
        let out = aft.run(&["jobs", "log", purged]);
        assert!(!out.status.success(), "the log of {purged} is gone too");
    }
    let log = aft.ok(&["jobs", "log", &kept[0]]);
    assert!(log.contains("run 4"), "{log}");
}

/// The `--json` slots of `aft schedule history NAME`.
fn slots(aft: &Aft, name: &str) -> Vec<Value> {
    let out = aft.ok(&["schedule", "history", name, "-n", "1000", "--json"]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_schedules_slot_history_is_purged_with_its_jobs() {
    let aft = Aft::new();
    let script = aft.write("tick.syncjs", r#"Log("tick");"#);
    aft.ok(&["script", "push", "tick", &script]);
    aft.ok(&[
        "schedule",
        "add",
        "every-second",
        "--script",
        "tick",
        "--cron",
        "* * * * * *",
    ]);
    let mut service = aft.serve();
    let fired = poll(Duration::from_secs(60), || {
        let slots = slots(&aft, "every-second");
        (slots.len() >= 4).then_some(slots)
    })
    .expect("the schedule fired 4 times");
    assert!(fired.iter().all(|s| s["status"] == "fired"), "{fired:?}");
    aft.ok(&["schedule", "update", "every-second", "--disable"]);
    // Every job ended, so that the newest slot's job is the newest ended job.
    poll(Duration::from_secs(30), || {
        let jobs: Value = serde_json::from_str(&aft.ok(&["jobs", "list", "--json"])).unwrap();
        let all = jobs.as_array().unwrap();
        all.iter()
            .all(|j| j["status"] != "queued" && j["status"] != "running")
            .then_some(())
    })
    .expect("the schedule's jobs ended");
    assert!(service.terminate().success());
    let before = slots(&aft, "every-second");
    assert!(before.len() >= 4, "{before:?}");

    aft.ok(&["settings", "set", "job-retention-max-jobs", "1"]);
    let _service = aft.serve();
    let left = poll(Duration::from_secs(30), || {
        let left = slots(&aft, "every-second");
        (left.len() == 1).then_some(left)
    })
    .unwrap_or_else(|| {
        panic!(
            "the purge left {} of {} slots",
            slots(&aft, "every-second").len(),
            before.len()
        )
    });
    // What is left is the newest slot, with the one job kept.
    assert_eq!(left[0]["slotTime"], before[0]["slotTime"], "{left:?}");
    assert_eq!(
        job_ids(&aft),
        vec![left[0]["jobId"].as_str().unwrap().to_string()]
    );
}
