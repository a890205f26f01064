//! `compact --where`: a predicate on partition values, e.g. `day(ts) < '2026-11-01'`,
//! `ts_day >= '2026-11-01' and id_bucket = 3`, `region = 'eu-west'`. Each condition names a
//! partition field (by its name, by `transform(column)`, or by the column of an identity field),
//! compares it with a literal (`=`, `!=`, `<`, `<=`, `>`, `>=`), and conditions join with `and`.
//! Values compare as numbers when both sides are numbers, else as the partition's human text,
//! the form `'2026-11-01'` (day), `'2026-11'` (month), `'2026-11-01-13'` (hour) that sorts in
//! time order. A null partition value matches no condition, as in SQL.

use iceberg::spec::{PartitionSpec, Schema, StructType, Transform};

/// A parsed `--where`, not yet tied to a table.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionFilter {
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    term: String,
    op: Op,
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The filter bound to a table's default spec: partition field index per condition.
#[derive(Debug, Clone)]
pub struct BoundFilter {
    conditions: Vec<(usize, Op, String)>,
    types: StructType,
    transforms: Vec<Transform>,
}

impl PartitionFilter {
    pub fn parse(text: &str) -> Result<PartitionFilter, String> {
        let usage = || {
            format!("--where {text:?}: write conditions like day(ts) < '2026-11-01' or id_bucket = 3, joined by and")
        };
        let mut conditions = Vec::new();
        for part in split_and(text) {
            let part = part.trim();
            let (at, op, width) = ["<=", ">=", "!=", "<>", "=", "<", ">"]
                .iter()
                .filter_map(|op| part.find(op).map(|at| (at, *op, op.len())))
                .min_by_key(|(at, _, width)| (*at, std::cmp::Reverse(*width)))
                .ok_or_else(usage)?;
            let op = match op {
                "=" => Op::Eq,
                "!=" | "<>" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                _ => Op::Ge,
            };
            let term: String = part[..at].chars().filter(|c| !c.is_whitespace()).collect();
            let raw = part[at + width..].trim();
            let value = raw.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(raw).to_string();
            if term.is_empty() || raw.is_empty() {
                return Err(usage());
            }
            conditions.push(Condition { term: term.to_ascii_lowercase(), op, value });
        }
        if conditions.is_empty() {
            return Err(usage());
        }
        Ok(PartitionFilter { conditions })
    }

    /// Ties each condition to a field of `spec`; names the fields there are when one is not.
    pub fn bind(&self, spec: &PartitionSpec, schema: &Schema) -> Result<BoundFilter, String> {
        let types = spec.partition_type(schema).map_err(|e| format!("--where: the partition spec: {e}"))?;
        let describe = |f: &iceberg::spec::PartitionField| {
            let column = schema.name_by_field_id(f.source_id).unwrap_or("?").to_string();
            let call = match f.transform {
                Transform::Identity => column.clone(),
                Transform::Bucket(n) => format!("bucket({n}, {column})"),
                Transform::Truncate(w) => format!("truncate({w}, {column})"),
                other => format!("{other}({column})"),
            };
            (f.name.to_ascii_lowercase(), call.to_ascii_lowercase().replace(' ', ""), call)
        };
        let mut conditions = Vec::new();
        for c in &self.conditions {
            let index = spec.fields().iter().position(|f| {
                let (name, call, _) = describe(f);
                c.term == name || c.term == call || c.term == format!("identity({call})")
            });
            let Some(index) = index else {
                let fields: Vec<String> =
                    spec.fields().iter().map(|f| format!("{} = {}", f.name, describe(f).2)).collect();
                return Err(format!(
                    "--where: {} is not a partition field of the table (its fields: {})",
                    c.term,
                    if fields.is_empty() { "none, it is unpartitioned".into() } else { fields.join(", ") }
                ));
            };
            conditions.push((index, c.op, c.value.clone()));
        }
        let transforms = spec.fields().iter().map(|f| f.transform).collect();
        Ok(BoundFilter { conditions, types, transforms })
    }
}

impl BoundFilter {
    /// Whether a file with these partition values (of the default spec) is selected.
    pub fn matches(&self, values: &iceberg::spec::Struct) -> bool {
        self.conditions.iter().all(|(index, op, wanted)| {
            let Some(Some(value)) = values.fields().get(*index) else { return false };
            let Some(field) = self.types.fields().get(*index) else { return false };
            let shown = self.transforms[*index].to_human_string(&field.field_type, Some(value));
            compare(&shown, wanted).is_some_and(|ordering| op.holds(ordering))
        })
    }
}

/// The value against the literal: numerically when both are numbers, else as text.
fn compare(shown: &str, wanted: &str) -> Option<std::cmp::Ordering> {
    match (shown.parse::<f64>(), wanted.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.partial_cmp(&b),
        _ => Some(shown.cmp(wanted)),
    }
}

impl Op {
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Op::Eq => ordering == Equal,
            Op::Ne => ordering != Equal,
            Op::Lt => ordering == Less,
            Op::Le => ordering != Greater,
            Op::Gt => ordering == Greater,
            Op::Ge => ordering != Less,
        }
    }
}

/// Splits on the word `and` outside quotes.
fn split_and(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    let words: Vec<&str> = text.split_inclusive(char::is_whitespace).collect();
    for word in words {
        if !quoted && word.trim().eq_ignore_ascii_case("and") {
            parts.push(String::new());
            continue;
        }
        quoted ^= word.matches('\'').count() % 2 == 1;
        if let Some(last) = parts.last_mut() {
            last.push_str(word);
        }
    }
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{Literal, NestedField, PrimitiveType, Struct, Type};

    use super::*;

    fn table() -> (PartitionSpec, Schema) {
        let schema = Schema::builder()
            .with_fields(vec![
                NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::required(2, "ts", Type::Primitive(PrimitiveType::Timestamptz)).into(),
                NestedField::optional(3, "region", Type::Primitive(PrimitiveType::String)).into(),
            ])
            .build()
            .expect("schema");
        let spec = PartitionSpec::builder(schema.clone())
            .add_partition_field("ts", "ts_day", Transform::Day)
            .and_then(|b| b.add_partition_field("id", "id_bucket", Transform::Bucket(16)))
            .and_then(|b| b.add_partition_field("region", "region", Transform::Identity))
            .expect("fields")
            .build()
            .expect("spec");
        (spec, schema)
    }

    fn values(day: i32, bucket: i32, region: Option<&str>) -> Struct {
        Struct::from_iter([Some(Literal::date(day)), Some(Literal::int(bucket)), region.map(Literal::string)])
    }

    #[test]
    fn conditions_on_days_buckets_and_identity_columns() {
        let (spec, schema) = table();
        let selected = |text: &str, v: &Struct| {
            PartitionFilter::parse(text).expect("parse").bind(&spec, &schema).expect("bind").matches(v)
        };
        // 20393 = 2025-11-01, 20758 = 2026-11-01.
        let (old, new) = (values(20_393, 3, Some("eu/west?#%")), values(20_758, 12, None));
        assert!(selected("day(ts) < '2026-11-01'", &old) && !selected("day(ts) < '2026-11-01'", &new));
        assert!(selected("ts_day >= '2026-11-01' AND id_bucket > 5", &new));
        assert!(!selected("ts_day >= '2026-11-01' and id_bucket > 12", &new));
        assert!(selected("ts_day=2025-11-01", &old), "the old `ts_day=…` form still selects its day");
        assert!(selected("bucket(16, id) = 3", &old) && selected("id_bucket != 12", &old));
        assert!(selected("region = 'eu/west?#%'", &old), "text with / ? # % compares as written");
        assert!(!selected("region != 'x'", &new), "a null partition value matches nothing");
    }

    #[test]
    fn unknown_fields_and_bad_syntax_say_what_there_is() {
        let (spec, schema) = table();
        let e = PartitionFilter::parse("hour(ts) = 3").expect("parse").bind(&spec, &schema).expect_err("no hour");
        assert!(e.contains("ts_day = day(ts)") && e.contains("id_bucket = bucket(16, id)"), "{e}");
        for bad in ["", "ts_day", "= 3", "ts_day <"] {
            assert!(PartitionFilter::parse(bad).is_err(), "{bad}");
        }
        let quoted = PartitionFilter::parse("region = 'sand and sea'").expect("parse");
        assert_eq!(quoted.conditions.len(), 1, "`and` inside quotes is text");
    }
}
