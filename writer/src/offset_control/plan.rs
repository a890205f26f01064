//! What `icefall-writer offsets` shows and where it moves partitions: pure functions over what
//! the table and the broker say, so every rule is unit-tested without either.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `(topic, partition)`.
pub type PartitionKey = (String, i32);

/// Where `offsets reset` / `offsets set` moves partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The first offset the broker still holds.
    Earliest,
    /// The log end: only records produced from now on.
    Latest,
    /// The first record at or after this time (ms since the epoch); the log end where none is.
    Datetime(i64),
    /// Named partitions to named offsets.
    Explicit(BTreeMap<PartitionKey, i64>),
}

/// One partition as the table and the broker see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    pub topic: String,
    pub partition: i32,
    /// The next offset the table says to read (`None`: the table has none yet).
    pub table: Option<i64>,
    /// The first offset the broker holds.
    pub log_start: i64,
    /// The offset the next produced record gets.
    pub log_end: i64,
}

impl PartitionView {
    pub fn key(&self) -> PartitionKey {
        (self.topic.clone(), self.partition)
    }
}

/// One partition's move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub view: PartitionView,
    pub to: i64,
}

/// Parses `topic:partition=offset` (topic names cannot hold `:`).
pub fn parse_assignment(text: &str) -> Result<(PartitionKey, i64), String> {
    let usage = || format!("{text:?}: write topic:partition=offset, e.g. events:0=1200");
    let (target, offset) = text.split_once('=').ok_or_else(usage)?;
    let (topic, partition) = target.rsplit_once(':').ok_or_else(usage)?;
    let partition: i32 = partition.trim().parse().map_err(|_| usage())?;
    let offset: i64 = offset.trim().parse().map_err(|_| usage())?;
    if topic.is_empty() || partition < 0 || offset < 0 {
        return Err(usage());
    }
    Ok(((topic.to_string(), partition), offset))
}

/// Parses an RFC 3339 time (`2026-11-30T12:00:00Z`, an offset instead of `Z` is fine) into ms.
pub fn parse_datetime(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("{text:?} is not an RFC 3339 time ({e}); write e.g. 2026-11-30T12:00:00Z"))
}

/// The moves `target` makes. `by_time` holds the broker's answer for [`Target::Datetime`]:
/// the first offset at or after the time, `None` where the partition has no such record.
/// Every destination lies within the broker's log: a table offset past the log end stops the
/// writer, and one before the log start skips records (counted as lost).
pub fn plan(
    views: &[PartitionView],
    target: &Target,
    by_time: &BTreeMap<PartitionKey, Option<i64>>,
) -> Result<Vec<Move>, String> {
    let moves: Vec<Move> = match target {
        Target::Earliest => views.iter().map(|v| Move { view: v.clone(), to: v.log_start }).collect(),
        Target::Latest => views.iter().map(|v| Move { view: v.clone(), to: v.log_end }).collect(),
        Target::Datetime(_) => views
            .iter()
            .map(|v| {
                let found = by_time.get(&v.key()).copied().flatten();
                Move { view: v.clone(), to: found.unwrap_or(v.log_end).clamp(v.log_start, v.log_end) }
            })
            .collect(),
        Target::Explicit(wanted) => {
            let mut moves = Vec::new();
            for ((topic, partition), to) in wanted {
                let view = views.iter().find(|v| &v.topic == topic && v.partition == *partition).ok_or_else(|| {
                    let known: Vec<String> =
                        views.iter().filter(|v| &v.topic == topic).map(|v| v.partition.to_string()).collect();
                    if known.is_empty() {
                        format!("{topic} is not a topic of this pipeline")
                    } else {
                        format!("{topic} has no partition {partition} (it has {})", known.join(", "))
                    }
                })?;
                if *to < view.log_start || *to > view.log_end {
                    return Err(format!(
                        "{topic}:{partition}={to} is outside what the broker holds ({}..={}): past the end the \
                         writer would stop, before the start records would be skipped; pick an offset in that range",
                        view.log_start, view.log_end
                    ));
                }
                moves.push(Move { view: view.clone(), to: *to });
            }
            moves
        }
    };
    Ok(moves)
}

/// The summary value recording what a reset did: topic → partition → `[from, to]` (`from`
/// null where the table had no offset).
pub fn audit(moves: &[Move]) -> String {
    let mut map: BTreeMap<&str, BTreeMap<String, (Option<i64>, i64)>> = BTreeMap::new();
    for m in moves {
        map.entry(&m.view.topic).or_default().insert(m.view.partition.to_string(), (m.view.table, m.to));
    }
    serde_json::to_string(&map).unwrap_or_default()
}

/// A text table: one row per partition with the table's offset, the log, the lag, and the
/// new offset where there are moves.
pub fn render(views: &[PartitionView], moves: Option<&[Move]>) -> String {
    let mut rows = vec![vec![
        "TOPIC".to_string(),
        "PARTITION".into(),
        "TABLE OFFSET".into(),
        "LOG START".into(),
        "LOG END".into(),
        "LAG".into(),
    ]];
    if moves.is_some() {
        rows[0].push("NEW OFFSET".into());
    }
    for v in views {
        let lag = v.table.map_or("-".to_string(), |t| (v.log_end - t).max(0).to_string());
        let mut row = vec![
            v.topic.clone(),
            v.partition.to_string(),
            v.table.map_or("-".to_string(), |t| t.to_string()),
            v.log_start.to_string(),
            v.log_end.to_string(),
            lag,
        ];
        if let Some(moves) = moves {
            let to = moves.iter().find(|m| m.view.key() == v.key()).map(|m| m.to.to_string());
            row.push(to.unwrap_or_else(|| "(unchanged)".into()));
        }
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views() -> Vec<PartitionView> {
        vec![
            PartitionView { topic: "events".into(), partition: 0, table: Some(120), log_start: 100, log_end: 200 },
            PartitionView { topic: "events".into(), partition: 1, table: None, log_start: 0, log_end: 50 },
        ]
    }

    #[test]
    fn assignments_parse_and_bad_ones_say_how_to_write_them() {
        assert_eq!(parse_assignment("events:1=42"), Ok((("events".into(), 1), 42)));
        assert_eq!(parse_assignment("my.topic-x:10=0"), Ok((("my.topic-x".into(), 10), 0)));
        for bad in ["events=1", "events:1", "events:x=1", ":1=2", "events:-1=2", "events:1=-2"] {
            let e = parse_assignment(bad).expect_err(bad);
            assert!(e.contains("topic:partition=offset"), "{e}");
        }
    }

    #[test]
    fn datetimes_are_rfc3339() {
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_datetime("1970-01-01T01:00:01+01:00"), Ok(1000));
        assert!(parse_datetime("yesterday").expect_err("bad").contains("RFC 3339"));
    }

    #[test]
    fn earliest_latest_and_time_stay_within_the_log() {
        let to =
            |t: &Target, by_time| plan(&views(), t, by_time).expect("plan").iter().map(|m| m.to).collect::<Vec<_>>();
        let none = BTreeMap::new();
        assert_eq!(to(&Target::Earliest, &none), vec![100, 0]);
        assert_eq!(to(&Target::Latest, &none), vec![200, 50]);
        // Partition 1 has nothing at or after the time: it goes to its end, as Kafka's tools do.
        let found = BTreeMap::from([(("events".into(), 0), Some(150)), (("events".into(), 1), None)]);
        assert_eq!(to(&Target::Datetime(5), &found), vec![150, 50]);
    }

    #[test]
    fn explicit_offsets_outside_the_log_or_unknown_partitions_are_refused() {
        let set = |topic: &str, p, o| Target::Explicit(BTreeMap::from([((topic.to_string(), p), o)]));
        let moves = plan(&views(), &set("events", 0, 150), &BTreeMap::new()).expect("plan");
        assert_eq!(moves.len(), 1);
        assert_eq!((moves[0].view.partition, moves[0].to), (0, 150));
        assert!(plan(&views(), &set("events", 0, 201), &BTreeMap::new()).expect_err("past").contains("100..=200"));
        assert!(plan(&views(), &set("events", 0, 99), &BTreeMap::new()).is_err());
        assert!(plan(&views(), &set("events", 7, 1), &BTreeMap::new()).expect_err("p").contains("it has 0, 1"));
        assert!(plan(&views(), &set("other", 0, 1), &BTreeMap::new()).expect_err("t").contains("not a topic"));
    }

    #[test]
    fn the_audit_and_the_table_show_from_and_to() {
        let moves = plan(&views(), &Target::Earliest, &BTreeMap::new()).expect("plan");
        assert_eq!(audit(&moves), r#"{"events":{"0":[120,100],"1":[null,0]}}"#);
        let text = render(&views(), Some(&moves));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("TOPIC   PARTITION  TABLE OFFSET"), "{text}");
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["events", "0", "120", "100", "200", "80", "100"]);
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["events", "1", "-", "0", "50", "-", "0"]);
    }
}
