//! What a statistics run reads: which columns, and whether the sketches of an earlier
//! statistics file can be carried forward so that only the files appended since are read.

use std::collections::{BTreeSet, HashMap};

use iceberg::spec::{
    DataContentType, ManifestStatus, Operation, PrimitiveType, Schema, StatisticsFile, TableMetadata, Type,
};
use icefall_table::contract::OPTIMIZER_STATS_COLUMNS;
use icefall_table::{Catalog, LoadedTable};

use crate::{Error, Result};

/// String and binary columns whose values average more than this are skipped by default: a
/// payload column's NDV helps no planner and costs a full read.
const WIDE_VALUE_BYTES: u64 = 1024;

/// A column a run sketches.
#[derive(Debug, Clone)]
pub struct StatsColumn {
    pub field_id: i32,
    pub name: String,
    pub ty: PrimitiveType,
}

/// How a run gets its sketches.
#[derive(Debug)]
pub enum Basis {
    /// Every live data file is read.
    Full { why: String },
    /// The sketches of `previous` are merged with those of `added` (files appended since).
    Incremental { previous: StatisticsFile, added: BTreeSet<String> },
    /// The current snapshot already has statistics of these columns.
    UpToDate,
}

/// The columns named for sketching: `chosen` (`--columns`), else the table property
/// `icefall.optimizer.stats.columns`; `None`: the default choice ([`columns`]).
pub fn named_columns(chosen: Option<&[String]>, metadata: &TableMetadata) -> Option<Vec<String>> {
    let property = metadata
        .properties()
        .get(OPTIMIZER_STATS_COLUMNS)
        .map(|v| v.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect());
    chosen.map(<[String]>::to_vec).or(property)
}

/// The columns to sketch: the `named` ones, else every top-level primitive column but wide
/// strings and binaries (`average_bytes`, from the manifests' column sizes; only read for
/// the default). Notes say what was skipped and why.
pub fn columns(
    schema: &Schema,
    named: Option<Vec<String>>,
    average_bytes: &HashMap<i32, u64>,
) -> Result<(Vec<StatsColumn>, Vec<String>)> {
    let mut notes = Vec::new();
    let columns = match named {
        Some(names) => names
            .iter()
            .map(|name| {
                let field = schema.as_struct().fields().iter().find(|f| &f.name == name).ok_or_else(|| {
                    let known: Vec<&str> = schema.as_struct().fields().iter().map(|f| f.name.as_str()).collect();
                    Error::Config(format!(
                        "no top-level column {name:?} to compute statistics of; the table has {known:?}"
                    ))
                })?;
                match field.field_type.as_ref() {
                    Type::Primitive(ty) => Ok(StatsColumn { field_id: field.id, name: name.clone(), ty: ty.clone() }),
                    _ => Err(Error::Config(format!("column {name:?} is nested: statistics are per primitive column"))),
                }
            })
            .collect::<Result<Vec<_>>>()?,
        None => {
            let mut columns = Vec::new();
            for field in schema.as_struct().fields() {
                let Type::Primitive(ty) = field.field_type.as_ref() else {
                    notes.push(format!("{} skipped: nested", field.name));
                    continue;
                };
                let wide = average_bytes.get(&field.id).is_some_and(|b| *b > WIDE_VALUE_BYTES);
                if wide && matches!(ty, PrimitiveType::String | PrimitiveType::Binary | PrimitiveType::Fixed(_)) {
                    notes.push(format!("{} skipped: values average over {WIDE_VALUE_BYTES} bytes", field.name));
                    continue;
                }
                columns.push(StatsColumn { field_id: field.id, name: field.name.clone(), ty: ty.clone() });
            }
            columns
        }
    };
    Ok((columns, notes))
}

/// Bytes per value of each column over the current snapshot's data files (from the
/// manifests' column sizes and value counts).
pub async fn average_value_bytes(catalog: &Catalog, table: &LoadedTable) -> Result<HashMap<i32, u64>> {
    let Some(snapshot) = table.metadata.current_snapshot() else {
        return Ok(HashMap::new());
    };
    let mut totals: HashMap<i32, (u64, u64)> = HashMap::new();
    for manifest_file in catalog.manifest_list(&table.metadata, snapshot).await?.entries() {
        let manifest = manifest_file
            .load_manifest(catalog.file_io())
            .await
            .map_err(Error::iceberg(format!("read {}", manifest_file.manifest_path)))?;
        for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
            let file = entry.data_file();
            if file.content_type() != DataContentType::Data {
                continue;
            }
            for (id, bytes) in file.column_sizes() {
                let total = totals.entry(*id).or_default();
                total.0 += bytes;
                total.1 += file.value_counts().get(id).copied().unwrap_or(0);
            }
        }
    }
    Ok(totals
        .into_iter()
        .filter(|(_, (_, values))| *values > 0)
        .map(|(id, (bytes, values))| (id, bytes / values))
        .collect())
}

/// Full or incremental: the newest ancestor of the current snapshot with statistics of every
/// column is the base if everything since only appended files (or rewrote them without
/// changing rows) and the appended files are all still live.
pub async fn basis(catalog: &Catalog, table: &LoadedTable, columns: &[StatsColumn]) -> Result<Basis> {
    let metadata = &table.metadata;
    let Some(current) = metadata.current_snapshot() else {
        return Ok(Basis::Full { why: "the table has no snapshot".into() });
    };
    let wanted: BTreeSet<i32> = columns.iter().map(|c| c.field_id).collect();
    let covers = |stats: &StatisticsFile| {
        let sketched: BTreeSet<i32> = stats
            .blob_metadata
            .iter()
            .filter(|b| b.r#type == iceberg::puffin::APACHE_DATASKETCHES_THETA_V1 && b.fields.len() == 1)
            .filter(|b| b.properties.get(super::puffin::LG_K_PROPERTY) == Some(&super::sketch::LG_K.to_string()))
            .map(|b| b.fields[0])
            .collect();
        wanted.is_subset(&sketched)
    };
    let mut since = Vec::new();
    let mut snapshot = Some(current.clone());
    let previous = loop {
        let Some(at) = snapshot else {
            return Ok(Basis::Full { why: "no earlier statistics of these columns".into() });
        };
        if let Some(stats) = metadata.statistics_for_snapshot(at.snapshot_id()).filter(|s| covers(s)) {
            break stats.clone();
        }
        snapshot = at.parent_snapshot_id().and_then(|id| metadata.snapshot_by_id(id)).cloned();
        since.push(at);
    };
    if since.is_empty() {
        return Ok(Basis::UpToDate);
    }
    let mut added = BTreeSet::new();
    for snapshot in &since {
        match snapshot.summary().operation {
            Operation::Append => {}
            // Files rewritten, rows unchanged (compaction, delete rewrites, manifest merges).
            Operation::Replace => continue,
            Operation::Overwrite | Operation::Delete => {
                return Ok(Basis::Full {
                    why: format!(
                        "snapshot {} deleted or overwrote rows since the last statistics",
                        snapshot.snapshot_id()
                    ),
                });
            }
        }
        for manifest_file in catalog.manifest_list(metadata, snapshot).await?.entries() {
            if manifest_file.added_snapshot_id != snapshot.snapshot_id() {
                continue;
            }
            let manifest = manifest_file
                .load_manifest(catalog.file_io())
                .await
                .map_err(Error::iceberg(format!("read {}", manifest_file.manifest_path)))?;
            for entry in manifest.entries() {
                if entry.status() == ManifestStatus::Added && entry.data_file().content_type() == DataContentType::Data
                {
                    added.insert(entry.file_path().to_string());
                }
            }
        }
    }
    Ok(Basis::Incremental { previous, added })
}
