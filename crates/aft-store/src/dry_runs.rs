//! Dry-run jobs (migration 0055): the mark that makes a queued job a dry run, and the plan
//! it ended with.

use sqlx::Row;

use crate::jobs::InList;
use crate::{Job, NewJob, Store, StoreResult};

/// Mark job `id` a dry run.
pub(crate) async fn mark_dry_run(conn: &mut sqlx::AnyConnection, id: &str) -> StoreResult<()> {
    sqlx::query("INSERT INTO job_dry_runs (job_id) VALUES ($1)")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

impl Store {
    /// Queue `job` as a dry run. The job is marked in the transaction that queues it, so it
    /// never runs for real.
    pub async fn enqueue_dry_run(&self, job: &NewJob) -> StoreResult<Job> {
        self.enqueue_job_recorded(job, true, |_| None).await
    }

    /// Record `job` as a dry run that this process runs itself (`aft run --dry-run` without
    /// a service), as [`Store::start_job_here`] does. No node claims a running job, so it
    /// cannot run for real while it is being marked.
    pub async fn start_dry_run_here(
        &self,
        job: &NewJob,
        node_id: &str,
        lease: std::time::Duration,
    ) -> StoreResult<Job> {
        let started = self.start_job_here(job, node_id, lease).await?;
        let mut conn = self.pool().acquire().await?;
        mark_dry_run(&mut conn, &started.id).await?;
        Ok(started)
    }

    /// Whether job `id` is a dry run.
    pub async fn is_dry_run(&self, id: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT job_id FROM job_dry_runs WHERE job_id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some())
    }

    /// Which of the jobs `ids` are dry runs.
    pub async fn dry_runs_among(
        &self,
        ids: &[String],
    ) -> StoreResult<std::collections::HashSet<String>> {
        let mut found = std::collections::HashSet::new();
        // One query per page of jobs, in chunks well below every driver's bind limit, each
        // padded so that a handful of statements serves every page size.
        for chunk in ids.chunks(512) {
            let chunk = InList::new(chunk.iter().map(String::as_str), 1);
            let sql = format!(
                "SELECT job_id FROM job_dry_runs WHERE job_id IN ({})",
                chunk.placeholders
            );
            for row in chunk.bind(sqlx::query(&sql)).fetch_all(self.pool()).await? {
                found.insert(row.try_get::<String, _>("job_id")?);
            }
        }
        Ok(found)
    }

    /// Keep the plan (JSON) a dry run ended with.
    pub async fn save_dry_run_plan(&self, id: &str, plan_json: &str) -> StoreResult<()> {
        sqlx::query("UPDATE job_dry_runs SET plan = $1 WHERE job_id = $2")
            .bind(plan_json)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// For a dry run, `Some(plan JSON once it ended)`; `None` for a real job.
    pub async fn dry_run_plan(&self, id: &str) -> StoreResult<Option<Option<String>>> {
        let row = sqlx::query("SELECT plan FROM job_dry_runs WHERE job_id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| r.try_get::<Option<String>, _>("plan"))
            .transpose()
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use crate::NewJob;

    crate::both_dialects!(
        a_dry_run_is_marked_before_it_can_be_claimed_and_keeps_its_plan,
        |store| async move {
            let job = store
                .enqueue_dry_run(&NewJob {
                    source: "Log('x')".into(),
                    origin: "api".into(),
                    ..NewJob::default()
                })
                .await
                .unwrap();
            assert_eq!(job.pinned_node, None);
            assert!(store.is_dry_run(&job.id).await.unwrap());
            assert_eq!(store.dry_run_plan(&job.id).await.unwrap(), Some(None));
            store
                .save_dry_run_plan(&job.id, "{\"effects\":[]}")
                .await
                .unwrap();
            assert_eq!(
                store.dry_run_plan(&job.id).await.unwrap(),
                Some(Some("{\"effects\":[]}".into()))
            );
            let real = store
                .enqueue_job(&NewJob {
                    source: "Log('y')".into(),
                    origin: "api".into(),
                    ..NewJob::default()
                })
                .await
                .unwrap();
            assert!(!store.is_dry_run(&real.id).await.unwrap());
            let among = store
                .dry_runs_among(&[job.id.clone(), real.id.clone()])
                .await
                .unwrap();
            assert!(among.len() == 1 && among.contains(&job.id), "{among:?}");
            assert_eq!(store.dry_run_plan(&real.id).await.unwrap(), None);
        }
    );
}
