//! Retrying, each policy written once: waiting while a service is unavailable ([`Backoff`])
//! and trying a commit again after it lost a race ([`RetryPolicy`], which the table's own
//! `commit.retry.*` properties override, as in every Iceberg client).

use std::time::Duration;

use iceberg::spec::TableMetadata;

use crate::{Error, Result};

/// Waiting while a service (catalog, broker, schema registry, storage) is unavailable: the delay
/// doubles from the first to a cap, for as long as the caller keeps waiting.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// The first wait: short, since most outages are a restart or a failover.
    pub const FIRST: Duration = Duration::from_millis(500);
    /// The longest wait: a service that comes back is noticed within this.
    pub const MAX: Duration = Duration::from_secs(30);

    /// 0.5 s doubling to 30 s.
    pub fn unavailable() -> Self {
        Self::new(Self::FIRST, Self::MAX)
    }

    /// Waits that start at `first` and double up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff { next: first, max }
    }

    /// The wait before the next try; the one after is twice as long (up to the cap).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

/// How often a plan tied to one table state (a schema evolution, a manifest rewrite) is made
/// again after another process changed that state first: each new plan starts from the newest
/// table, so needing more means the table changes faster than the plan can be made.
pub const REPLAN_ATTEMPTS: u32 = 20;

/// Re-planning after a rejected commit, written once: a commit whose checks failed against a
/// newer table (`Error::Rejected`) is planned again from that table, up to [`REPLAN_ATTEMPTS`]
/// times; any other error ends the loop.
///
/// ```ignore
/// let mut replan = Replan::new(table_name);
/// loop {
///     let pending = plan(&table)?;
///     match catalog.commit(table, &pending, check, &policy).await {
///         Ok(outcome) => return Ok(outcome),
///         Err(e) => { replan.again(e)?; table = catalog.load(&ident).await?; }
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Replan {
    table: String,
    plans: u32,
}

impl Replan {
    /// A fresh count of plans for one change to `table` (named in errors).
    pub fn new(table: impl Into<String>) -> Self {
        Replan { table: table.into(), plans: 1 }
    }

    /// Whether to plan again after `error`: `Ok(reason)` for a rejected commit with plans left;
    /// otherwise the error to return (`ConflictRetriesExhausted` once the plans run out).
    pub fn again(&mut self, error: Error) -> Result<String> {
        let Error::Rejected { reason, .. } = error else {
            return Err(error);
        };
        if self.plans >= REPLAN_ATTEMPTS {
            return Err(Error::ConflictRetriesExhausted { table: self.table.clone(), attempts: self.plans });
        }
        self.plans += 1;
        tracing::info!(table = %self.table, reason, plan = self.plans, "the table changed first; planning the commit again");
        Ok(reason)
    }
}

/// How hard to try when other commits keep landing first.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before giving up (`ConflictRetriesExhausted`).
    pub max_attempts: u32,
    /// The first wait after a lost race.
    pub min_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
}

/// Table properties (Iceberg's names) that override a [`RetryPolicy`].
pub const NUM_RETRIES: &str = "commit.retry.num-retries";
/// Table property: the first wait after a lost race, ms.
pub const MIN_WAIT_MS: &str = "commit.retry.min-wait-ms";
/// Table property: the longest wait, ms.
pub const MAX_WAIT_MS: &str = "commit.retry.max-wait-ms";

impl Default for RetryPolicy {
    /// A writer commits every few seconds beside other writers and the optimizer: 30 attempts
    /// (more than Iceberg's default 4 retries) keep a busy table from failing a checkpoint.
    fn default() -> Self {
        RetryPolicy { max_attempts: 30, min_backoff: Duration::from_millis(20), max_backoff: Duration::from_secs(2) }
    }
}

impl RetryPolicy {
    /// For maintenance commits (compaction, expiry), which race a writer that commits every
    /// second and lose nothing by waiting: 100 attempts.
    pub fn maintenance() -> Self {
        RetryPolicy { max_attempts: 100, ..Self::default() }
    }

    /// Exponential backoff with jitter, so racing committers spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.min_backoff.saturating_mul(1u32 << attempt.min(16));
        let capped = exp.min(self.max_backoff);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
        capped.mul_f64(0.5 + jitter / 2.0)
    }

    /// This policy with the table's `commit.retry.*` properties applied (`num-retries` counts
    /// retries, so attempts are one more).
    pub fn with_table_properties(&self, metadata: &TableMetadata) -> Result<RetryPolicy> {
        let number = |key: &str| -> Result<Option<u64>> {
            match metadata.properties().get(key) {
                None => Ok(None),
                Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| Error::Metadata {
                    table: metadata.location().to_string(),
                    message: format!("table property {key} = {v:?} is not a whole number; fix it with ALTER TABLE … SET TBLPROPERTIES"),
                }),
            }
        };
        let mut policy = self.clone();
        if let Some(retries) = number(NUM_RETRIES)? {
            policy.max_attempts = u32::try_from(retries).unwrap_or(u32::MAX).saturating_add(1);
        }
        if let Some(ms) = number(MIN_WAIT_MS)? {
            policy.min_backoff = Duration::from_millis(ms);
        }
        if let Some(ms) = number(MAX_WAIT_MS)? {
            policy.max_backoff = Duration::from_millis(ms);
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_commit_is_planned_again_until_the_plans_run_out() {
        let rejected = || Error::Rejected { table: "db.t".into(), reason: "moved".into() };
        let mut replan = Replan::new("db.t");
        for _ in 1..REPLAN_ATTEMPTS {
            assert_eq!(replan.again(rejected()).expect("plan again"), "moved");
        }
        let last = replan.again(rejected()).expect_err("plans exhausted");
        assert!(matches!(last, Error::ConflictRetriesExhausted { attempts: REPLAN_ATTEMPTS, .. }), "{last}");
        let other = Replan::new("db.t").again(Error::TableNotFound("db.t".into())).expect_err("not re-planned");
        assert!(matches!(other, Error::TableNotFound(_)), "{other}");
    }

    #[test]
    fn waiting_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(2));
        let waits: Vec<u128> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 2000, 2000]);
    }

    #[test]
    fn the_tables_commit_retry_properties_win() {
        let metadata = |props: &[(&str, &str)]| {
            let json = serde_json::json!({
                "format-version": 2, "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
                "location": "file:///w/t", "last-sequence-number": 0, "last-updated-ms": 0,
                "last-column-id": 1, "current-schema-id": 0,
                "schemas": [{"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "x", "required": false, "type": "long"}]}],
                "default-spec-id": 0, "partition-specs": [{"spec-id": 0, "fields": []}], "last-partition-id": 999,
                "default-sort-order-id": 0, "sort-orders": [{"order-id": 0, "fields": []}],
                "properties": props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::HashMap<_, _>>(),
            });
            serde_json::from_value::<TableMetadata>(json).expect("metadata")
        };
        let unset = RetryPolicy::maintenance().with_table_properties(&metadata(&[])).expect("policy");
        assert_eq!(unset.max_attempts, 100);
        let set = RetryPolicy::default()
            .with_table_properties(&metadata(&[(NUM_RETRIES, "4"), (MIN_WAIT_MS, "100"), (MAX_WAIT_MS, "60000")]))
            .expect("policy");
        assert_eq!((set.max_attempts, set.min_backoff.as_millis(), set.max_backoff.as_secs()), (5, 100, 60));
        let bad = RetryPolicy::default().with_table_properties(&metadata(&[(NUM_RETRIES, "many")])).expect_err("bad");
        assert!(bad.to_string().contains("commit.retry.num-retries"), "{bad}");
    }
}
