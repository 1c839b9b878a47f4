//! Prometheus metrics: jobs by status and queue depth (from the store, so every node shows
//! the cluster), job run times on this node (a histogram kept in memory).

use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use aft_store::JobStatus;
use aft_store::Store;

/// Upper bounds of the run-time histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 3600.0,
];

/// Run-time histogram of the jobs this node finished.
#[derive(Default)]
pub struct Metrics {
    histogram: Mutex<Histogram>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
    by_status: Vec<(JobStatus, u64)>,
}

impl Metrics {
    /// Record that a job ended with `status` after running for `took`.
    pub fn job_finished(&self, status: JobStatus, took: Duration) {
        let mut h = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum_seconds += secs;
        match h.by_status.iter_mut().find(|(s, _)| *s == status) {
            Some(entry) => entry.1 += 1,
            None => h.by_status.push((status, 1)),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub async fn render(
        &self,
        store: &Store,
        running_here: usize,
    ) -> Result<String, aft_store::StoreError> {
        let counts = store.count_jobs_by_status().await?;
        let mut out = String::new();
        let _ = writeln!(out, "# HELP aft_jobs Jobs in the store by status.");
        let _ = writeln!(out, "# TYPE aft_jobs gauge");
        for (status, n) in &counts {
            let _ = writeln!(out, "aft_jobs{{status=\"{status}\"}} {n}");
        }
        let queued = counts
            .iter()
            .find(|(s, _)| *s == JobStatus::Queued)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "# HELP aft_queue_depth Jobs waiting for a worker.");
        let _ = writeln!(out, "# TYPE aft_queue_depth gauge");
        let _ = writeln!(out, "aft_queue_depth {queued}");
        let _ = writeln!(
            out,
            "# HELP aft_node_running_jobs Jobs running on this node."
        );
        let _ = writeln!(out, "# TYPE aft_node_running_jobs gauge");
        let _ = writeln!(out, "aft_node_running_jobs {running_here}");
        let h = self.histogram.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP aft_job_run_seconds Run time of jobs this node finished."
        );
        let _ = writeln!(out, "# TYPE aft_job_run_seconds histogram");
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "aft_job_run_seconds_bucket{{le=\"{bound}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(out, "aft_job_run_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "aft_job_run_seconds_sum {}", h.sum_seconds);
        let _ = writeln!(out, "aft_job_run_seconds_count {}", h.count);
        let _ = writeln!(
            out,
            "# HELP aft_node_jobs_finished_total Jobs this node finished, by status."
        );
        let _ = writeln!(out, "# TYPE aft_node_jobs_finished_total counter");
        for (status, n) in &h.by_status {
            let _ = writeln!(
                out,
                "aft_node_jobs_finished_total{{status=\"{status}\"}} {n}"
            );
        }
        Ok(out)
    }
}
