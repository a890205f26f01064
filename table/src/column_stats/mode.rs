//! Which metrics a column gets, from Iceberg's table properties, as Iceberg's Java writers
//! read them (so Spark and Icefall write alike):
//!
//! - `write.metadata.metrics.default`: the mode of every column not named below
//!   (`truncate(16)` when unset);
//! - `write.metadata.metrics.column.<name>`: one column's mode, by its full name (`geo.city`
//!   for a field inside a struct);
//! - `write.metadata.metrics.max-inferred-column-defaults` (100): when no default is set, only
//!   the first that many primitive columns get `truncate(16)`, the rest `none`, so wide tables
//!   keep small manifests.
//!
//! Modes: `none` (nothing), `counts` (value, null and NaN counts), `truncate(N)` (counts and
//! bounds, strings and binaries cut to N characters/bytes), `full` (counts and whole bounds).

use std::collections::HashMap;

/// Table property: the metrics mode of every column without its own.
pub const DEFAULT_KEY: &str = "write.metadata.metrics.default";
/// Table property prefix: the metrics mode of one column.
pub const COLUMN_PREFIX: &str = "write.metadata.metrics.column.";
/// Table property: how many columns get the default mode when none is set (the rest get `none`).
pub const MAX_INFERRED_KEY: &str = "write.metadata.metrics.max-inferred-column-defaults";
/// Iceberg's default for `write.metadata.metrics.max-inferred-column-defaults`.
const MAX_INFERRED_DEFAULT: usize = 100;
/// Iceberg's default mode: `truncate(16)`.
pub const DEFAULT_TRUNCATE: usize = 16;

/// What one column records in a data file's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsMode {
    /// No metrics.
    None,
    /// Value, null and NaN counts only.
    Counts,
    /// Counts and bounds; strings and binaries bounded by their first N characters/bytes.
    Truncate(usize),
    /// Counts and untruncated bounds.
    Full,
}

impl MetricsMode {
    /// Parses a mode as Iceberg spells it (case-insensitive); the error names `key` and the
    /// modes there are.
    fn parse(key: &str, value: &str) -> Result<Self, String> {
        let lower = value.trim().to_ascii_lowercase();
        let mode = match lower.as_str() {
            "none" => Some(Self::None),
            "counts" => Some(Self::Counts),
            "full" => Some(Self::Full),
            other => other
                .strip_prefix("truncate(")
                .and_then(|rest| rest.strip_suffix(')'))
                .and_then(|n| n.trim().parse::<usize>().ok())
                .filter(|n| *n > 0)
                .map(Self::Truncate),
        };
        mode.ok_or_else(|| {
            format!("{key} = {value:?} is not a metrics mode: use none, counts, truncate(N) with N > 0, or full")
        })
    }

    /// True when counts are kept.
    pub fn counts(self) -> bool {
        self != Self::None
    }

    /// Whether bounds are kept, and how long strings and binaries may be (`None`: whole).
    pub fn bounds(self) -> Option<Option<usize>> {
        match self {
            Self::None | Self::Counts => None,
            Self::Truncate(n) => Some(Some(n)),
            Self::Full => Some(None),
        }
    }
}

/// The metrics modes of one table, from its properties.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// `None` when the table sets no default (then the first `max_inferred` columns get
    /// `truncate(16)`).
    default: Option<MetricsMode>,
    columns: HashMap<String, MetricsMode>,
    max_inferred: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { default: None, columns: HashMap::new(), max_inferred: MAX_INFERRED_DEFAULT }
    }
}

impl MetricsConfig {
    /// Reads the `write.metadata.metrics.*` properties; the error names the key whose value is
    /// not a mode.
    pub fn from_properties(props: &HashMap<String, String>) -> Result<Self, String> {
        let mut config = MetricsConfig::default();
        for (key, value) in props {
            if key == DEFAULT_KEY {
                config.default = Some(MetricsMode::parse(key, value)?);
            } else if let Some(column) = key.strip_prefix(COLUMN_PREFIX) {
                config.columns.insert(column.to_string(), MetricsMode::parse(key, value)?);
            } else if key == MAX_INFERRED_KEY {
                config.max_inferred =
                    value.trim().parse().map_err(|_| format!("{key} = {value:?} is not a number of columns"))?;
            }
        }
        Ok(config)
    }

    /// The mode of the column named `name`, the `position`-th primitive column (from 0) in
    /// schema order.
    pub fn mode(&self, name: &str, position: usize) -> MetricsMode {
        if let Some(mode) = self.columns.get(name) {
            return *mode;
        }
        match self.default {
            Some(mode) => mode,
            None if position < self.max_inferred => MetricsMode::Truncate(DEFAULT_TRUNCATE),
            None => MetricsMode::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<MetricsConfig, String> {
        MetricsConfig::from_properties(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn modes_follow_iceberg_properties() {
        let c = config(&[]).expect("none set");
        assert_eq!(c.mode("x", 0), MetricsMode::Truncate(16));
        assert_eq!(c.mode("x", 100), MetricsMode::None, "past max-inferred-column-defaults");
        let c = config(&[
            (DEFAULT_KEY, "counts"),
            ("write.metadata.metrics.column.x", "none"),
            ("write.metadata.metrics.column.geo.city", "Truncate( 4 )"),
            ("write.metadata.metrics.column.url", "full"),
        ])
        .expect("valid");
        assert_eq!(c.mode("y", 500), MetricsMode::Counts, "an explicit default applies to every column");
        assert_eq!(c.mode("x", 0), MetricsMode::None);
        assert_eq!(c.mode("geo.city", 1), MetricsMode::Truncate(4));
        assert_eq!(c.mode("url", 2), MetricsMode::Full);
        let c = config(&[(MAX_INFERRED_KEY, "2")]).expect("valid");
        assert_eq!((c.mode("a", 1), c.mode("b", 2)), (MetricsMode::Truncate(16), MetricsMode::None));
    }

    #[test]
    fn a_value_that_is_no_mode_names_the_key() {
        for bad in ["truncate(0)", "truncate", "some", "truncate(x)"] {
            let err = config(&[("write.metadata.metrics.column.url", bad)]).expect_err(bad);
            assert!(err.contains("write.metadata.metrics.column.url") && err.contains("truncate(N)"), "{err}");
        }
    }
}
