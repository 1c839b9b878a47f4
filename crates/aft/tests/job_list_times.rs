//! `GET /v1/jobs?since=&until=` through the real `aft serve`: the times are RFC 3339 with
//! any offset and compare as times (not as text), the bounds are exact (`since` at a job's
//! queue time includes it, `until` at it excludes it), and paging through a time window
//! gives every job in it once (the reliability issue's scale item makes these filters walk
//! a `seq` range derived from the times).

mod support;

use chrono::{DateTime, FixedOffset, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Aft, call, wait_job};

/// `GET /v1/jobs?QUERY` with the key, every page of `limit`; the job ids, newest first.
async fn list(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    query: &[(&str, String)],
    limit: usize,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let mut url = reqwest::Url::parse(&format!("{base}/v1/jobs")).unwrap();
        url.query_pairs_mut()
            .extend_pairs(query)
            .append_pair("limit", &limit.to_string());
        if let Some(b) = before {
            url.query_pairs_mut().append_pair("before", &b.to_string());
        }
        let (status, page) = call(
            client,
            Method::GET,
            url.as_str(),
            Some(("X-API-Key", key)),
            None,
        )
        .await;
        assert_eq!(status, 200, "{url}: {page}");
        let jobs = page["jobs"].as_array().unwrap();
        ids.extend(jobs.iter().map(|j| j["id"].as_str().unwrap().to_string()));
        match page["nextBefore"].as_i64() {
            Some(b) => before = Some(b),
            None => return ids,
        }
    }
}

/// A job's queue time shown at another offset (`+02:00`, `-05:00`), the same instant.
fn at_offset(created_at: &str, hours: i32) -> String {
    let at: DateTime<Utc> = created_at.parse().unwrap();
    let offset = FixedOffset::east_opt(hours * 3600).unwrap();
    at.with_timezone(&offset)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

#[tokio::test]
async fn time_filters_are_exact_in_any_offset_and_page_through_a_window() {
    let aft = Aft::new();
    aft.push_script("one", r#"Log("n=" + Param("n"));"#);
    let key = aft.create_key("lister", "127.0.0.1");
    let service = aft.serve();
    let (client, base) = (service.client(), service.base());
    // Jobs queued one after the other (each waited for, so their queue times differ).
    let mut jobs: Vec<(String, String)> = Vec::new();
    for n in 0..12 {
        let (status, queued) = call(
            &client,
            Method::POST,
            &format!("{base}/v1/jobs"),
            Some(("X-API-Key", &key)),
            Some(&json!({"scriptName": "one", "params": {"n": n.to_string()}})),
        )
        .await;
        assert_eq!(status, 202, "{queued}");
        let id = queued["jobId"].as_str().unwrap().to_string();
        let job: Value = wait_job(&client, &base, ("X-API-Key", &key), &id).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        jobs.push((id, job["createdAt"].as_str().unwrap().to_string()));
    }
    let newest_first = |range: std::ops::Range<usize>| -> Vec<String> {
        jobs[range].iter().rev().map(|(id, _)| id.clone()).collect()
    };
    let (from, to) = (&jobs[3].1, &jobs[9].1);
    assert!(from < to, "queue times {from} and {to} must differ");
    // Cut points that are not a queue time of any job: half way between two.
    let between = |a: &str, b: &str| -> String {
        let (a, b): (DateTime<Utc>, DateTime<Utc>) = (a.parse().unwrap(), b.parse().unwrap());
        (a + (b - a) / 2).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    };
    // Each case: the query's bounds, and the ids expected, newest first.
    type Case<'a> = (Vec<(&'a str, String)>, Vec<String>);
    let cases: Vec<Case> = vec![
        // Exact bounds, as stored.
        (vec![("since", from.clone())], newest_first(3..12)),
        (vec![("until", to.clone())], newest_first(0..9)),
        (
            vec![("since", from.clone()), ("until", to.clone())],
            newest_first(3..9),
        ),
        // The same instants at other offsets.
        (
            vec![("since", at_offset(from, 2)), ("until", at_offset(to, -5))],
            newest_first(3..9),
        ),
        (vec![("until", at_offset(to, 9))], newest_first(0..9)),
        // Nanosecond cut points between two jobs.
        (
            vec![
                ("since", between(&jobs[1].1, &jobs[2].1)),
                ("until", between(&jobs[10].1, &jobs[11].1)),
            ],
            newest_first(2..11),
        ),
        // Nothing before the first job, everything before a time after the last.
        (vec![("until", jobs[0].1.clone())], vec![]),
        (
            vec![("until", "2999-01-01T00:00:00Z".to_string())],
            newest_first(0..12),
        ),
        (
            vec![("since", "2000-01-01T00:00:00+14:00".to_string())],
            newest_first(0..12),
        ),
    ];
    for (query, want) in cases {
        for limit in [1, 4, 100] {
            let got = list(&client, &base, &key, &query, limit).await;
            assert_eq!(got, want, "{query:?} limit {limit}");
        }
    }
}
