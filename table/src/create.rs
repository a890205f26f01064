//! Table creation from a declared layout: schema, hidden partitioning and properties.

use std::collections::HashMap;

use iceberg::spec::{NullOrder, Schema, SortDirection, SortField, SortOrder, Transform, UnboundPartitionSpec};
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
    /// The table's schema, with field ids.
    pub schema: Schema,
    /// Partition fields as written by users: `day(ts)`, `bucket(16, id)`, `truncate(4, name)`,
    /// `identity(country)` or just `country`, `year(..)`, `month(..)`, `hour(..)`.
    pub partition: Vec<String>,
    /// Table properties on top of [`default_properties`].
    pub properties: HashMap<String, String>,
    /// Sort order: `column`, `column desc`, `column asc nulls last` (compaction writes sorted).
    pub sort_order: Vec<String>,
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

    /// The sort order of this layout (unsorted when none is declared).
    pub fn sort(&self) -> Result<SortOrder> {
        if self.sort_order.is_empty() {
            return Ok(SortOrder::unsorted_order());
        }
        let mut builder = SortOrder::builder();
        builder.with_order_id(1);
        for text in &self.sort_order {
            let words: Vec<String> = text.split_whitespace().map(str::to_ascii_lowercase).collect();
            let bad = || Error::Config(format!("sort field {text:?}: write `column [asc|desc] [nulls first|last]`"));
            let column = text.split_whitespace().next().ok_or_else(bad)?;
            let field = self.schema.field_by_name(column).ok_or_else(|| {
                Error::Config(format!("sort field {text:?} names column {column:?}, which the schema lacks"))
            })?;
            let direction = match words.get(1).map(String::as_str) {
                None | Some("asc") | Some("nulls") => SortDirection::Ascending,
                Some("desc") => SortDirection::Descending,
                _ => return Err(bad()),
            };
            let nulls_last = words.windows(2).any(|w| w[0] == "nulls" && w[1] == "last");
            let nulls_first = words.windows(2).any(|w| w[0] == "nulls" && w[1] == "first");
            // Iceberg's defaults: nulls first for ascending, last for descending.
            let null_order = match (nulls_first, nulls_last, direction) {
                (true, _, _) => NullOrder::First,
                (_, true, _) => NullOrder::Last,
                (_, _, SortDirection::Ascending) => NullOrder::First,
                (_, _, SortDirection::Descending) => NullOrder::Last,
            };
            builder.with_sort_field(SortField {
                source_id: field.id,
                transform: Transform::Identity,
                direction,
                null_order,
            });
        }
        builder
            .build(&self.schema)
            .map_err(|e| Error::Config(format!("sort order {:?}: {}", self.sort_order, e.message())))
    }

    /// The Iceberg `TableCreation` of this layout for `ident`.
    pub fn to_creation(&self, ident: &TableIdent) -> Result<TableCreation> {
        let mut properties = default_properties();
        properties.extend(self.properties.clone());
        Ok(TableCreation::builder()
            .name(ident.name().to_string())
            .schema(self.schema.clone())
            .partition_spec(self.partition_spec()?)
            .sort_order(self.sort()?)
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

    #[test]
    fn sort_orders_parse_with_iceberg_null_defaults() {
        use iceberg::spec::{NestedField, PrimitiveType, Type};
        let schema = Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(2, "ts", Type::Primitive(PrimitiveType::Timestamptz)).into(),
            ])
            .build()
            .expect("schema");
        let layout = |order: &[&str]| TableLayout {
            schema: schema.clone(),
            partition: vec![],
            properties: HashMap::new(),
            sort_order: order.iter().map(|s| s.to_string()).collect(),
        };
        let order = layout(&["id", "ts desc"]).sort().expect("valid");
        assert_eq!(order.fields[0].direction, SortDirection::Ascending);
        assert_eq!(order.fields[0].null_order, NullOrder::First);
        assert_eq!(order.fields[1].direction, SortDirection::Descending);
        assert_eq!(order.fields[1].null_order, NullOrder::Last);
        let order = layout(&["ts asc nulls last"]).sort().expect("valid");
        assert_eq!(order.fields[0].null_order, NullOrder::Last);
        assert!(layout(&[]).sort().expect("valid").is_unsorted());
        assert!(layout(&["nope"]).sort().is_err());
        assert!(layout(&["id sideways"]).sort().is_err());
    }
}
