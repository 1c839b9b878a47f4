//! Property tests ("fuzzing" on stable Rust) of the store's parsers of user input: cron
//! expressions ([`CronTimes`], schedules) and job parameters ([`JobParams`]).
//!
//! Each must never panic, must give the right answer for every well-formed input a generator
//! can build, must name the problem when it refuses, and must stay bounded on adversarial
//! input. The committed corpus (tests/corpus/cron, tests/corpus/params) holds hand-picked and
//! previously failing inputs; it is replayed on every run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aft_store::{CronTimes, JobParams, MAX_SLOTS_PER_PASS, MisfirePolicy, OverlapPolicy, Schedule};
use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

#[path = "../../aft-vfs/tests/fuzz_support/mod.rs"]
mod fuzz_support;
use fuzz_support::{config, corpus};

/// Run `f` and fail when it took longer than `limit`.
fn bounded<T>(what: &str, limit: Duration, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    let took = started.elapsed();
    assert!(took < limit, "{what} took {took:?}");
    out
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

// ---------------------------------------------------------------------------------------
// Cron expressions

/// Parse `expr` and, when it parses, walk its next fire times: they must strictly increase.
fn exercise(expr: &str, tz: &str) -> Result<Vec<DateTime<Utc>>, String> {
    bounded(
        &format!("cron {expr:?} in {tz}"),
        Duration::from_secs(5),
        || {
            let times = CronTimes::parse(expr, tz).map_err(|e| e.to_string())?;
            let next = times.next_n(start(), 12);
            for pair in next.windows(2) {
                assert!(pair[0] < pair[1], "{expr:?}: {next:?} is not increasing");
            }
            if let Some(first) = next.first() {
                assert!(*first > start(), "{expr:?}: {first} is not after the start");
            }
            Ok(next)
        },
    )
}

#[test]
fn cron_corpus_replays_with_the_expected_outcome() {
    // Each line: `ok|err<TAB>expression<TAB>time zone`; `err` lines must name the expression.
    let mut n = 0;
    for file in corpus("cron") {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut cols = line.split('\t');
            let (want, expr, tz) = (
                cols.next().unwrap(),
                cols.next().unwrap_or(""),
                cols.next().unwrap_or("UTC"),
            );
            match (want, exercise(expr, tz)) {
                ("ok", Ok(_)) => {}
                ("err", Err(e)) => assert!(
                    e.contains(&format!("{expr:?}")) || e.contains(&format!("{tz:?}")),
                    "{line}: {e}"
                ),
                (_, got) => panic!("{}: {line:?} gave {got:?}", file.display()),
            }
            n += 1;
        }
    }
    assert!(n > 20, "{n} corpus lines");
}

/// One cron field: its text and the values it allows.
#[derive(Debug, Clone)]
struct Field {
    text: String,
    values: BTreeSet<u32>,
    star: bool,
}

/// A field: `*`, `*/step`, `a-b`, `a-b/step` or a list of those, with values in `lo..=hi`
/// (`*` and `*/step` span the field's whole `lo..=max`: days of the month go to 31).
fn field(lo: u32, hi: u32, max: u32) -> impl Strategy<Value = Field> {
    let part = prop_oneof![
        (lo..=hi).prop_map(move |v| (v.to_string(), BTreeSet::from([v]))),
        (lo..=hi, lo..=hi, 1u32..5).prop_map(move |(a, b, step)| {
            let (a, b) = (a.min(b), a.max(b));
            let values = (a..=b).step_by(step as usize).collect();
            let text = if step == 1 {
                format!("{a}-{b}")
            } else {
                format!("{a}-{b}/{step}")
            };
            (text, values)
        }),
        (2u32..7).prop_map(move |step| {
            (
                format!("*/{step}"),
                (lo..=max).step_by(step as usize).collect(),
            )
        }),
    ];
    prop_oneof![
        1 => Just(Field { text: "*".into(), values: (lo..=max).collect(), star: true }),
        3 => prop::collection::vec(part, 1..4).prop_map(|parts| Field {
            text: parts.iter().map(|p| p.0.clone()).collect::<Vec<_>>().join(","),
            values: parts.into_iter().flat_map(|p| p.1).collect(),
            star: false,
        }),
    ]
}

#[derive(Debug, Clone)]
struct Expr {
    text: String,
    second: Option<Field>,
    minute: Field,
    hour: Field,
    dom: Field,
    month: Field,
    dow: Field,
}

impl Expr {
    /// Whether `t` (in the expression's zone) is a fire time, by the cron rules aft documents:
    /// day-of-month and weekday are OR-ed when both are restricted (Vixie cron).
    fn matches(&self, t: &DateTime<impl TimeZone>) -> bool {
        let second_ok = match &self.second {
            Some(f) => f.values.contains(&t.second()),
            None => t.second() == 0,
        };
        let dom = self.dom.values.contains(&t.day());
        let dow = self
            .dow
            .values
            .contains(&t.weekday().num_days_from_sunday())
            || (t.weekday().num_days_from_sunday() == 0 && self.dow.values.contains(&7));
        let day_ok = match (self.dom.star, self.dow.star) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        };
        second_ok
            && self.minute.values.contains(&t.minute())
            && self.hour.values.contains(&t.hour())
            && self.month.values.contains(&t.month())
            && day_ok
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    (
        prop::option::of(field(0, 59, 59)),
        field(0, 59, 59),
        field(0, 23, 23),
        field(1, 28, 31),
        field(1, 12, 12),
        // Sunday is 0 and 7; `*/n` steps over 0..=6.
        field(0, 7, 6),
    )
        .prop_map(|(second, minute, hour, dom, month, dow)| {
            let mut parts: Vec<&str> = Vec::new();
            if let Some(s) = &second {
                parts.push(&s.text);
            }
            for f in [&minute, &hour, &dom, &month, &dow] {
                parts.push(&f.text);
            }
            Expr {
                text: parts.join(" "),
                second,
                minute,
                hour,
                dom,
                month,
                dow,
            }
        })
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn cron_any_text_never_panics(expr in any::<String>(), tz in prop_oneof![
        Just("UTC".to_string()), Just("Europe/Rome".to_string()), any::<String>(),
    ]) {
        let _ = exercise(&expr, &tz);
    }

    #[test]
    fn cron_like_text_never_panics_and_errors_name_it(
        expr in "(@[a-z]{0,8}|[0-9*/,LW#?A-Za-z-]{0,6}( [0-9*/,LW#?A-Za-z-]{0,6}){0,7})",
    ) {
        if let Err(e) = exercise(&expr, "UTC") {
            prop_assert!(e.contains(&format!("{expr:?}")), "{}", e);
        }
    }
}

proptest! {
    #![proptest_config(config(120))]

    #[test]
    fn cron_fire_times_match_the_fields_and_none_is_missed(e in expr()) {
        let times = CronTimes::parse(&e.text, "UTC")
            .unwrap_or_else(|err| panic!("{:?}: {err}", e.text));
        let fires = bounded(&e.text, Duration::from_secs(5), || times.next_n(start(), 12));
        prop_assert_eq!(fires.len(), 12, "{:?} gave {:?}", e.text, fires);
        let step = if e.second.is_some() { 1 } else { 60 };
        let mut prev = start();
        for t in &fires {
            prop_assert!(*t > prev, "{:?}: {} after {}", e.text, t, prev);
            prop_assert!(e.matches(t), "{:?} fired at {}, which it does not match", e.text, t);
            // No matching time between two fires, where the gap is short enough to walk.
            if (*t - prev).num_seconds() <= 2 * 24 * 3600 {
                let mut c = prev + chrono::Duration::seconds(step - prev.timestamp() % step);
                while c < *t {
                    prop_assert!(!e.matches(&c), "{:?} missed {} (fired at {})", e.text, c, t);
                    c += chrono::Duration::seconds(step);
                }
            }
            prev = *t;
        }
    }

    #[test]
    fn cron_fire_times_in_a_dst_zone_increase_and_keep_minutes(
        e in expr(),
        tz in prop_oneof![Just("Europe/Rome"), Just("America/New_York"), Just("Australia/Lord_Howe")],
        days in 0i64..365,
    ) {
        let times = CronTimes::parse(&e.text, tz).unwrap();
        let from = start() + chrono::Duration::days(days);
        let fires = bounded(&e.text, Duration::from_secs(5), || times.next_n(from, 12));
        prop_assert_eq!(fires.len(), 12);
        let mut prev = from;
        for t in &fires {
            prop_assert!(*t > prev, "{:?} in {}: {} after {}", e.text, tz, t, prev);
            let local = t.with_timezone(&times.time_zone());
            // Hours can move across a DST change (Lord Howe's moves 30 minutes); seconds can't.
            if tz != "Australia/Lord_Howe" {
                prop_assert!(e.minute.values.contains(&local.minute()), "{:?} at {}", e.text, local);
            }
            prev = *t;
        }
    }
}

#[test]
fn cron_impossible_and_rare_dates_end_in_bounded_time() {
    for expr in [
        "0 0 30 2 *",
        "0 0 31 4,6,9,11 *",
        "0 0 29 2 *",
        "0 0 29 2 1",
        "59 23 31 12 *",
        "0 0 L 2 *",
        "0 0 * * 5#5",
        "0 0 31W 2 *",
        "* * * * * *",
    ] {
        let times = CronTimes::parse(expr, "UTC").unwrap();
        bounded(expr, Duration::from_secs(5), || times.next_n(start(), 50));
    }
    // February 30 never comes: no fire time, rather than a loop.
    assert!(
        CronTimes::parse("0 0 30 2 *", "UTC")
            .unwrap()
            .next_after(start())
            .is_none()
    );
}

#[test]
fn schedule_due_slots_stay_bounded_after_a_long_outage() {
    // An every-second schedule whose node was away for 40 days: at most MAX_SLOTS_PER_PASS
    // slots, the newest ones, computed in bounded time.
    let now = start();
    let schedule = Schedule {
        id: "s".into(),
        name: "every-second".into(),
        script_name: "x".into(),
        cron: "* * * * * *".into(),
        time_zone: "UTC".into(),
        params: JobParams::default(),
        overlap: OverlapPolicy::Skip,
        misfire: MisfirePolicy::Skip,
        enabled: true,
        last_slot: now - chrono::Duration::days(40),
        created_at: now,
        updated_at: now,
    };
    let due = bounded("due_slots", Duration::from_secs(10), || {
        schedule.due_slots(now).unwrap()
    });
    assert_eq!(due.len(), MAX_SLOTS_PER_PASS);
    assert_eq!(due.last(), Some(&now));
    assert_eq!(
        due.first(),
        Some(&(now - chrono::Duration::seconds(MAX_SLOTS_PER_PASS as i64 - 1)))
    );
}

/// `due_slots` as the plain forward walk from the cursor: the reference for the fast one.
fn due_slots_walking_forward(
    times: &CronTimes,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let mut due = std::collections::VecDeque::new();
    let mut cursor = last;
    while let Some(next) = times.next_after(cursor) {
        if next > now || next <= cursor {
            break;
        }
        if due.len() == MAX_SLOTS_PER_PASS {
            due.pop_front();
        }
        due.push_back(next);
        cursor = next;
    }
    due.into()
}

proptest! {
    #![proptest_config(config(40))]

    #[test]
    fn schedule_due_slots_are_the_forward_walks_newest_slots(
        e in expr(),
        tz in prop_oneof![Just("UTC"), Just("Europe/Rome"), Just("America/New_York")],
        days in 0i64..365,
        gap in 0i64..86_400,
        now_ms in 0i64..1000,
    ) {
        // Around a DST change now and then: March 29 and October 25 in Rome.
        let now = start() + chrono::Duration::days(days) + chrono::Duration::milliseconds(now_ms);
        let schedule = Schedule {
            id: "s".into(),
            name: "s".into(),
            script_name: "x".into(),
            cron: e.text.clone(),
            time_zone: tz.into(),
            params: JobParams::default(),
            overlap: OverlapPolicy::Skip,
            misfire: MisfirePolicy::Skip,
            enabled: true,
            last_slot: now - chrono::Duration::seconds(gap),
            created_at: now,
            updated_at: now,
        };
        let times = schedule.times().unwrap();
        let want = due_slots_walking_forward(&times, schedule.last_slot, now);
        prop_assert_eq!(schedule.due_slots(now).unwrap(), want, "{:?} in {}", e.text, tz);
    }
}

// ---------------------------------------------------------------------------------------
// Job parameters

#[test]
fn params_corpus_replays_with_the_expected_outcome() {
    // Files named `ok-*.json` parse; `err-<what the error names>--*.json` are refused.
    for file in corpus("params") {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let got = bounded(&name, Duration::from_secs(5), || JobParams::parse(&text));
        if let Some(says) = name.strip_prefix("err-") {
            let says = says.split("--").next().unwrap().replace('_', " ");
            let e = got.expect_err(&name).to_string();
            assert!(e.contains(&says), "{name}: {e}");
        } else {
            let p = got.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                JobParams::parse(&p.to_json().to_string()).unwrap(),
                p,
                "{name}"
            );
        }
    }
}

#[test]
fn params_deep_nesting_and_huge_input_are_refused_or_taken_in_bounded_time() {
    // Nested `n` deep around a `1`: valid JSON, however deep.
    let deep =
        |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
    for (text, says) in [
        (deep("[", "]", 1_000_000), "not valid JSON"),
        (deep("{\"a\":", "}", 1_000_000), "not valid JSON"),
        (format!("{{\"a\":{}}}", deep("[", "]", 100)), "\"a\""),
        (
            format!(
                "[{{\"name\":\"a\",\"value\":{}}}]",
                deep("{\"b\":", "}", 100)
            ),
            "\"a\"",
        ),
    ] {
        let e = bounded("deep params", Duration::from_secs(5), || {
            JobParams::parse(&text)
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains(says), "{e}");
    }
    let big = "x".repeat(4 << 20);
    let p = bounded("4 MB value", Duration::from_secs(5), || {
        JobParams::parse(&json!({ "big": big }).to_string())
    })
    .unwrap();
    assert_eq!(p.get("big").map(str::len), Some(big.len()));
    let many: BTreeMap<String, String> = (0..100_000)
        .map(|i| (format!("p{i}"), i.to_string()))
        .collect();
    let text = serde_json::to_string(&many).unwrap();
    let p = bounded("100k params", Duration::from_secs(5), || {
        JobParams::parse(&text)
    })
    .unwrap();
    assert_eq!(p.into_map(), many);
}

/// A JSON value of any shape, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The text a scalar becomes, or `None` for null; nested values have none.
fn expected_text(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        Value::Bool(b) => Some(Some(b.to_string())),
        Value::Number(n) => Some(Some(n.to_string())),
        Value::Array(_) | Value::Object(_) => None,
    }
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn params_any_text_never_panics_and_errors_explain(text in any::<String>()) {
        if let Err(e) = JobParams::parse(&text) {
            let e = e.to_string();
            prop_assert!(e.contains("params"), "{}", e);
        }
    }

    #[test]
    fn params_round_trip_through_their_stored_form(
        map in prop::collection::btree_map("\\PC{0,12}", "\\PC{0,24}", 0..12),
    ) {
        let p = JobParams::from(map.clone());
        let text = p.to_json().to_string();
        prop_assert_eq!(&JobParams::parse(&text).unwrap(), &p);
        prop_assert_eq!(&serde_json::from_str::<JobParams>(&serde_json::to_string(&p).unwrap()).unwrap(), &p);
        // AFT! v3's list form says the same.
        let list: Vec<Value> = map.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
        prop_assert_eq!(&JobParams::parse(&Value::Array(list).to_string()).unwrap(), &p);
        prop_assert_eq!(p.into_map(), map);
    }

    #[test]
    fn params_any_json_is_taken_exactly_or_refused_by_name(value in json_value()) {
        let text = value.to_string();
        let got = JobParams::parse(&text);
        // The value as serde_json reads the text back: its float parsing is not exact in the
        // last digit (no `float_roundtrip`), and a number's text is what it read.
        let value: Value = serde_json::from_str(&text).unwrap();
        match &value {
            Value::Null => prop_assert!(got.unwrap().is_empty()),
            Value::Object(map) => {
                let nested = map.iter().find(|(_, v)| expected_text(v).is_none());
                match (nested, got) {
                    (Some((name, _)), Err(e)) => {
                        // serde_json's map is sorted: the first nested one is the one named.
                        prop_assert!(e.to_string().contains(&format!("{name:?}")), "{}", e);
                    }
                    (None, Ok(p)) => {
                        let want: BTreeMap<String, String> = map
                            .iter()
                            .filter_map(|(k, v)| expected_text(v).flatten().map(|t| (k.clone(), t)))
                            .collect();
                        prop_assert_eq!(p.into_map(), want);
                    }
                    (n, g) => prop_assert!(false, "{value}: nested {n:?}, got {g:?}"),
                }
            }
            Value::Array(items) => {
                let pair = |i: &Value| {
                    i.as_object().is_some_and(|o| {
                        o.get("name").is_some_and(Value::is_string)
                            && o.keys().all(|k| k == "name" || k == "value")
                    })
                };
                let bad = items.iter().find(|i| {
                    !pair(i) || i.get("value").is_some_and(|v| expected_text(v).is_none())
                });
                match (bad, got) {
                    (Some(_), Err(e)) => prop_assert!(e.to_string().contains("params"), "{}", e),
                    (None, Ok(p)) => {
                        let mut want = BTreeMap::new();
                        for i in items {
                            let value = i.get("value").map_or(Some(None), expected_text);
                            if let Some(Some(t)) = value {
                                want.insert(i["name"].as_str().unwrap().to_string(), t);
                            }
                        }
                        prop_assert_eq!(p.into_map(), want);
                    }
                    (b, g) => prop_assert!(false, "{value}: bad item {b:?}, got {g:?}"),
                }
            }
            _ => {
                let e = got.unwrap_err().to_string();
                prop_assert!(e.contains("flat JSON object"), "{}", e);
            }
        }
    }
}
