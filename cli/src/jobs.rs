//! `convect scheduled` and `convect crons`: what the scheduler holds, one line
//! per job, for people (times in UTC, with the raw milliseconds Convex stores).

use crate::client;
use crate::Target;
use anyhow::Result;
use convect_engine::scheduler::cron::utc_text;
use serde_json::Value;

fn time(value: &Value) -> String {
    match value.as_f64() {
        Some(ms) => format!("{} ({})", utc_text(ms as i64), ms as i64),
        None => "never".into(),
    }
}

/// One line per scheduled function: id, function, state (and error), time.
pub async fn scheduled(target: &Target) -> Result<()> {
    let jobs = client::get(target, "/api/convect/scheduled").await?;
    for job in jobs.as_array().into_iter().flatten() {
        let state = &job["state"];
        let error = state["error"].as_str().map(|e| format!("  {}", e.lines().next().unwrap_or_default())).unwrap_or_default();
        println!(
            "{}  {}  {}  scheduled {}{error}",
            job["_id"].as_str().unwrap_or_default(),
            job["name"].as_str().unwrap_or_default(),
            state["kind"].as_str().unwrap_or_default(),
            time(&job["scheduledTime"]),
        );
    }
    Ok(())
}

/// One line per cron job: name, function, schedule, last and next run.
pub async fn crons(target: &Target) -> Result<()> {
    let crons = client::get(target, "/api/convect/crons").await?;
    for cron in crons.as_array().into_iter().flatten() {
        println!(
            "{}  {}  {}  last {}  next {}",
            cron["name"].as_str().unwrap_or_default(),
            cron["function"].as_str().unwrap_or_default(),
            cron["schedule"].as_str().unwrap_or_default(),
            time(&cron["lastRun"]),
            time(&cron["nextRun"]),
        );
    }
    Ok(())
}
