//! How compaction orders what it writes: bin-pack (in the table's sort order, if it has one) or
//! z-order over a few columns (Spark's `strategy => 'sort', sort_order => 'zorder(a, b)'`),
//! from the command line or, by default, the table's own property.

use iceberg::spec::TableMetadata;
use icefall_table::contract::OPTIMIZER_ZORDER_COLUMNS;
use serde::Serialize;

use crate::{Error, Result};

/// Spark's `max-file-group-size-bytes` default: a z-order group takes a partition's small files
/// up to this much, so its output files split one z-ordered sequence between them.
pub const ZORDER_GROUP_BYTES: u64 = 100 * 1024 * 1024 * 1024;

/// The compaction strategy.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Files packed up to the target size, rows in the table's sort order if it has one.
    #[default]
    BinPack,
    /// A partition's files rewritten together, rows in the z-order of these columns (empty:
    /// the table property's).
    ZOrder(Vec<String>),
}

impl Strategy {
    /// `--strategy` (`binpack`, `zorder`) and `--columns a,b`; `None`: the table's default.
    pub fn from_flags(strategy: Option<&str>, columns: Option<&str>) -> Result<Option<Strategy>> {
        match (strategy.map(str::to_ascii_lowercase).as_deref(), columns) {
            (None, None) => Ok(None),
            (Some("binpack"), None) => Ok(Some(Strategy::BinPack)),
            (Some("binpack"), Some(_)) => Err(Error::Config("--columns goes with --strategy zorder".into())),
            (Some("zorder") | None, columns) => Ok(Some(Strategy::ZOrder(columns.map(split).unwrap_or_default()))),
            (Some(other), _) => Err(Error::Config(format!("--strategy {other}: expected binpack or zorder"))),
        }
    }

    /// The strategy in force on a table: `chosen` (a z-order without columns takes the
    /// table's), else the table property `icefall.optimizer.compact.zorder-columns`, else
    /// bin-pack.
    pub fn for_table(chosen: Option<&Strategy>, metadata: &TableMetadata) -> Result<Strategy> {
        let property = metadata.properties().get(OPTIMIZER_ZORDER_COLUMNS).map(|v| split(v)).filter(|c| !c.is_empty());
        match (chosen, property) {
            (Some(Strategy::ZOrder(columns)), property) if columns.is_empty() => match property {
                Some(columns) => Ok(Strategy::ZOrder(columns)),
                None => Err(Error::Config(format!(
                    "z-order of which columns? pass --columns a,b or set the table property {OPTIMIZER_ZORDER_COLUMNS} \
                     ({})",
                    metadata.location()
                ))),
            },
            (Some(chosen), _) => Ok(chosen.clone()),
            (None, Some(columns)) => Ok(Strategy::ZOrder(columns)),
            (None, None) => Ok(Strategy::BinPack),
        }
    }

    /// For reports and `status`.
    pub fn human(&self) -> String {
        match self {
            Strategy::BinPack => "bin-pack".into(),
            Strategy::ZOrder(columns) => format!("z-order of {}", columns.join(", ")),
        }
    }
}

fn split(columns: &str) -> Vec<String> {
    columns.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_and_the_table_property_is_the_default() {
        assert_eq!(Strategy::from_flags(None, None).expect("none"), None);
        assert_eq!(Strategy::from_flags(Some("BinPack"), None).expect("binpack"), Some(Strategy::BinPack));
        let zorder = Strategy::from_flags(Some("zorder"), Some("a, b")).expect("zorder");
        assert_eq!(zorder, Some(Strategy::ZOrder(vec!["a".into(), "b".into()])));
        assert!(Strategy::from_flags(Some("hilbert"), None).is_err());
        assert!(Strategy::from_flags(Some("binpack"), Some("a")).is_err());
    }
}
