//! `time-window`: an authorizer that denies writes to chosen buckets outside the hours they
//! are open for (UTC). Reads are never affected. Runs after Cedar allowed a request and can
//! only deny.
//!
//! ```toml
//! [[plugins]]
//! name = "time-window"
//! world = "authorizer"
//! path = "plugins/dist/time_window.wasm"
//! [[plugins.config.windows]]
//! bucket = "reports"        # a bucket name, or "*" for every bucket
//! start_hour = 8            # writes allowed from 08:00 UTC ...
//! end_hour = 18             # ... until 18:00 UTC (end < start wraps past midnight)
//! days = ["mon", "tue", "wed", "thu", "fri"]   # optional; every day when absent
//! ```
//!
//! A bucket listed in several windows may be written during any of them. A write is any
//! action that creates, changes or deletes: `s3:Put*`, `s3:Delete*`, `s3:AbortMultipartUpload`
//! and `s3:Replicate*`.

use std::sync::OnceLock;

use serde::Deserialize;

wit_bindgen::generate!({
    path: "../../wit",
    world: "authorizer",
});

use exports::sluice::plugin::authorization::{AccessRequest, Decision, Guest as Authorization};
use exports::sluice::plugin::plugin_info::Guest as PluginInfo;
use sluice::plugin::types::Error;
use sluice::plugin::{clock, config};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    windows: Vec<Window>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    bucket: String,
    start_hour: u8,
    end_hour: u8,
    #[serde(default)]
    days: Option<Vec<String>>,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Window {
    /// Whether the window is open at `hour` (0..24) of weekday `day` (0 = Monday).
    fn open(&self, day: usize, hour: u8) -> bool {
        let day_ok = match &self.days {
            None => true,
            Some(days) => days.iter().any(|d| d.eq_ignore_ascii_case(DAYS[day])),
        };
        let hour_ok = if self.start_hour <= self.end_hour {
            (self.start_hour..self.end_hour).contains(&hour)
        } else {
            hour >= self.start_hour || hour < self.end_hour
        };
        day_ok && hour_ok
    }
}

fn settings() -> Result<&'static Settings, String> {
    static SETTINGS: OnceLock<Result<Settings, String>> = OnceLock::new();
    SETTINGS
        .get_or_init(|| {
            let s: Settings = serde_json::from_str(&config::get_all())
                .map_err(|e| format!("time-window config: {e}"))?;
            for w in &s.windows {
                if w.start_hour > 23 || w.end_hour > 24 || w.bucket.is_empty() {
                    return Err(format!(
                        "time-window config: bucket `{}` needs start_hour 0..23, end_hour 0..24",
                        w.bucket
                    ));
                }
                if let Some(days) = &w.days
                    && let Some(bad) = days
                        .iter()
                        .find(|d| !DAYS.iter().any(|x| x.eq_ignore_ascii_case(d)))
                {
                    return Err(format!("time-window config: unknown day `{bad}`"));
                }
            }
            Ok(s)
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn is_write(action: &str) -> bool {
    action.starts_with("s3:Put")
        || action.starts_with("s3:Delete")
        || action.starts_with("s3:Replicate")
        || action == "s3:AbortMultipartUpload"
}

/// The bucket of `arn:aws:s3:::bucket[/key]`.
fn bucket_of(resource: &str) -> Option<&str> {
    let rest = resource.strip_prefix("arn:aws:s3:::")?;
    Some(rest.split_once('/').map(|(b, _)| b).unwrap_or(rest))
}

struct TimeWindow;

impl PluginInfo for TimeWindow {
    fn info() -> (String, String) {
        ("time-window".into(), env!("CARGO_PKG_VERSION").into())
    }

    fn health() -> Result<(), String> {
        settings().map(|_| ())
    }
}

impl Authorization for TimeWindow {
    fn authorize(request: AccessRequest) -> Result<Decision, Error> {
        let settings = settings().map_err(Error::Internal)?;
        if !is_write(&request.action) {
            return Ok(Decision::AllowThrough);
        }
        let Some(bucket) = bucket_of(&request.resource) else {
            return Ok(Decision::AllowThrough);
        };
        let windows: Vec<&Window> = settings
            .windows
            .iter()
            .filter(|w| w.bucket == "*" || w.bucket == bucket)
            .collect();
        if windows.is_empty() {
            return Ok(Decision::AllowThrough);
        }
        let secs = clock::now_millis() / 1000;
        let hour = ((secs / 3600) % 24) as u8;
        // 1970-01-01 was a Thursday (index 3 with Monday = 0).
        let day = ((secs / 86_400 + 3) % 7) as usize;
        if windows.iter().any(|w| w.open(day, hour)) {
            Ok(Decision::AllowThrough)
        } else {
            Ok(Decision::Deny(format!(
                "writes to bucket `{bucket}` are not allowed at {hour:02}:00 UTC on {}",
                DAYS[day]
            )))
        }
    }
}

export!(TimeWindow);
