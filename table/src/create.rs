//! Table creation from a declared layout: schema, hidden partitioning and properties.

use std::collections::HashMap;

use iceberg::spec::{Schema, Transform, UnboundPartitionSpec};
use iceberg::{TableCreation, TableIdent};

use crate::{Catalog, Error, LoadedTable, Result};

/// Properties every table we create gets unless the user overrides them.
pub fn default_properties() -> HashMap<String, String> {
    HashMap::from([
        ("write.format.default".to_string(), "parquet".to_string()),
        ("write.parquet.compression-codec".to_string(), "zstd".to_string()),
        ("write.metadata.delete-after-commit.enabled".to_string(), "true".to_string()),
        ("write.metadata.previous-versions-max".to_string(), "100".to_string()),
    ])
}

/// What a new table looks like.
#[derive(Debug, Clone)]
pub struct TableLayout {
    pub schema: Schema,
    /// Partition fields as written by users: `day(ts)`, `bucket(16, id)`, `truncate(4, name)`,
    /// `identity(country)` or just `country`, `year(..)`, `month(..)`, `hour(..)`.
    pub partition: Vec<String>,
    /// Table properties on top of [`default_properties`].
    pub properties: HashMap<String, String>,
}

impl TableLayout {
    /// The unbound partition spec of this layout; errors name the bad field and the fix.
    pub fn partition_spec(&self) -> Result<UnboundPartitionSpec> {
        let mut builder = UnboundPartitionSpec::builder();
        for text in &self.partition {
            let (transform, column) = parse_partition_field(text)?;
            let field = self.schema.field_by_name(&column).ok_or_else(|| {
                Error::Config(format!("partition field {text:?} names column {column:?}, which the schema lacks"))
            })?;
            let name = partition_field_name(&column, &transform);
            builder = builder
                .add_partition_field(field.id, name, transform)
                .map_err(|e| Error::Config(format!("partition field {text:?}: {}", e.message())))?;
        }
        let spec = builder.build();
        // Bind once to catch transforms that do not fit the column type (e.g. day(string)).
        spec.clone()
            .bind(self.schema.clone())
            .map_err(|e| Error::Config(format!("partition spec {:?}: {}", self.partition, e.message())))?;
        Ok(spec)
    }

    pub fn to_creation(&self, ident: &TableIdent) -> Result<TableCreation> {
        let mut properties = default_properties();
        properties.extend(self.properties.clone());
        Ok(TableCreation::builder()
            .name(ident.name().to_string())
            .schema(self.schema.clone())
            .partition_spec(self.partition_spec()?)
            .properties(properties)
            .build())
    }
}

/// Parses one partition field declaration into its transform and source column.
pub fn parse_partition_field(text: &str) -> Result<(Transform, String)> {
    let bad = || {
        Error::Config(format!(
            "partition field {text:?}: write `column`, `identity(column)`, `year|month|day|hour(column)`, \
             `bucket(N, column)` or `truncate(W, column)`"
        ))
    };
    let text = text.trim();
    let Some(open) = text.find('(') else {
        if text.is_empty() {
            return Err(bad());
        }
        return Ok((Transform::Identity, text.to_string()));
    };
    let inner = text[open + 1..].strip_suffix(')').ok_or_else(bad)?;
    let args: Vec<&str> = inner.split(',').map(str::trim).collect();
    let column = |i: usize| args.get(i).filter(|c| !c.is_empty()).map(|c| c.to_string()).ok_or_else(bad);
    let number = || args.first().and_then(|n| n.parse::<u32>().ok()).filter(|n| *n > 0).ok_or_else(bad);
    let transform = match text[..open].trim().to_ascii_lowercase().as_str() {
        "identity" => return Ok((Transform::Identity, column(0)?)),
        "year" | "years" => Transform::Year,
        "month" | "months" => Transform::Month,
        "day" | "days" => Transform::Day,
        "hour" | "hours" => Transform::Hour,
        "bucket" => return Ok((Transform::Bucket(number()?), column(1)?)),
        "truncate" => return Ok((Transform::Truncate(number()?), column(1)?)),
        _ => return Err(bad()),
    };
    if args.len() != 1 {
        return Err(bad());
    }
    Ok((transform, column(0)?))
}

/// Spark's names for partition fields: `ts_day`, `id_bucket`, `name_trunc`, `country`.
fn partition_field_name(column: &str, transform: &Transform) -> String {
    let column = column.replace('.', "_");
    match transform {
        Transform::Identity => column,
        Transform::Year => format!("{column}_year"),
        Transform::Month => format!("{column}_month"),
        Transform::Day => format!("{column}_day"),
        Transform::Hour => format!("{column}_hour"),
        Transform::Bucket(_) => format!("{column}_bucket"),
        Transform::Truncate(_) => format!("{column}_trunc"),
        _ => format!("{column}_{transform}"),
    }
}

impl Catalog {
    /// Loads the table, creating it with `layout` if it does not exist yet. Safe when several
    /// processes start at once: the loser of the create race loads the winner's table.
    pub async fn load_or_create(&self, ident: &TableIdent, layout: &TableLayout) -> Result<LoadedTable> {
        match self.load(ident).await {
            Ok(table) => return Ok(table),
            Err(Error::TableNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        match self.create(ident, layout.to_creation(ident)?).await {
            Ok(table) => {
                tracing::info!(table = %table.name(), location = table.metadata.location(), "created table");
                Ok(table)
            }
            Err(Error::AlreadyExists(_)) => self.load(ident).await,
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_transform() {
        let cases = [
            ("country", Transform::Identity, "country"),
            ("identity(country)", Transform::Identity, "country"),
            ("day(ts)", Transform::Day, "ts"),
            ("hours(ts)", Transform::Hour, "ts"),
            ("month(ts)", Transform::Month, "ts"),
            ("year(ts)", Transform::Year, "ts"),
            ("bucket(16, id)", Transform::Bucket(16), "id"),
            ("truncate(4,name)", Transform::Truncate(4), "name"),
        ];
        for (text, transform, column) in cases {
            let parsed = parse_partition_field(text).expect(text);
            assert_eq!(parsed, (transform, column.to_string()), "{text}");
        }
        for bad in ["", "bucket(id)", "day(a, b)", "weird(x)", "truncate(0, x)", "day(ts"] {
            assert!(parse_partition_field(bad).is_err(), "{bad}");
        }
    }
}
