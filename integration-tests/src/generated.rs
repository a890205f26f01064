//! Tables filled directly (no broker, no writer) with generated rows, for tests about what the
//! optimizer does with a table's files: `a` uniform in [0, 1M), `b` uniform over 30 days from
//! 2026-11-01, `note` a long non-ASCII string with `/ ? # %` (null for a fifth of the rows).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
use icefall_table::catalog::parse_ident;
use icefall_table::create::TableLayout;
use icefall_table::files::TableFiles;
use icefall_table::{Catalog, PendingCommit, RetryPolicy};

use crate::Lcg;

/// 2026-11-01T00:00:00Z and 30 days, in microseconds.
pub const START_MICROS: u64 = 1_793_491_200_000_000;
pub const SPAN_MICROS: u64 = 30 * 86_400_000_000;

/// Creates `name` (unpartitioned, with `properties`) and appends `files` files of
/// `rows_per_file` rows, one commit each. The same arguments give the same rows.
pub async fn fill(catalog: &Catalog, name: &str, files: u64, rows_per_file: u64, properties: HashMap<String, String>) {
    let schema = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "a", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(2, "b", Type::Primitive(PrimitiveType::Timestamptz)).into(),
            NestedField::optional(3, "note", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()
        .expect("schema");
    let layout = TableLayout { schema, partition: vec![], properties, sort_order: vec![] };
    let mut table = catalog.load_or_create(&parse_ident(name).expect("ident"), &layout).await.expect("create");
    let arrow = Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata.current_schema()).expect("arrow"));
    let mut rng = Lcg::new(11);
    for f in 0..files {
        let a: Vec<i64> = (0..rows_per_file).map(|_| rng.range(0, 1_000_000) as i64).collect();
        let b: Vec<i64> = (0..rows_per_file).map(|_| (START_MICROS + rng.range(0, SPAN_MICROS)) as i64).collect();
        let note: Vec<Option<String>> =
            a.iter().map(|v| (v % 5 != 0).then(|| format!("{}/?#%-ünï-{v}", "z".repeat(64)))).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(a)),
            Arc::new(TimestampMicrosecondArray::from(b).with_timezone("+00:00")),
            Arc::new(StringArray::from(note)),
        ];
        let batch = RecordBatch::try_new(arrow.clone(), columns).expect("batch");
        let files =
            TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None).expect("files");
        let mut writer = files.open(format!("small-{f}")).expect("open");
        writer.write(batch).await.expect("write");
        let data = writer.close().await.expect("close");
        let pending = PendingCommit::append(data, files.spec_id(), HashMap::new());
        table = catalog
            .commit(table, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default())
            .await
            .expect("commit")
            .table;
    }
}
