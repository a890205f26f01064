//! Partitioned Parquet files through `TableFiles`: a batch all in one partition (written whole,
//! without the row-by-row split) and batches spanning partitions land in the same files, each
//! row in its own partition.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use iceberg::spec::{Datum, Literal, NestedField, PrimitiveType, Schema, Type};
use icefall_table::catalog::parse_ident;
use icefall_table::create::TableLayout;
use icefall_table::files::TableFiles;
use icefall_table::{Catalog, CatalogConfig};

const DAY_US: i64 = 86_400_000_000;

fn batch(schema: &arrow_schema::SchemaRef, rows: &[(i64, i64)]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(rows.iter().map(|(id, _)| *id).collect::<Vec<_>>())),
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(|(_, ts)| *ts).collect::<Vec<_>>()).with_timezone("+00:00"),
        ),
        Arc::new(StringArray::from(rows.iter().map(|(id, _)| format!("user/?#%é-{id}")).collect::<Vec<_>>())),
    ];
    RecordBatch::try_new(schema.clone(), columns).expect("batch")
}

#[tokio::test]
async fn rows_land_in_their_day_whether_a_batch_holds_one_day_or_several() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::connect(&CatalogConfig::embedded_in(dir.path())).await.expect("connect");
    let schema = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(2, "ts", Type::Primitive(PrimitiveType::Timestamptz)).into(),
            NestedField::optional(3, "user", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()
        .expect("schema");
    let layout =
        TableLayout { schema, partition: vec!["day(ts)".into()], properties: HashMap::new(), sort_order: vec![] };
    let table = catalog.load_or_create(&parse_ident("ns.days").expect("ident"), &layout).await.expect("create");
    let files = TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None).expect("files");
    let arrow = Arc::new(files.arrow_schema().expect("arrow"));
    let day = 20_000 * DAY_US;
    let mut writer = files.open("w".into()).expect("open");
    // All of day 20000; then days 20000 and 20001 mixed; then all of day 20001.
    writer.write(batch(&arrow, &[(0, day), (1, day + 1), (2, day + DAY_US - 1)])).await.expect("one day");
    writer.write(batch(&arrow, &[(3, day + DAY_US), (4, day + 7), (5, day + DAY_US + 9)])).await.expect("two days");
    writer.write(batch(&arrow, &[(6, day + DAY_US + 1)])).await.expect("one row");
    let data_files = writer.close().await.expect("close");
    let by_day: BTreeMap<i32, (u64, Datum, Datum)> = data_files
        .iter()
        .map(|f| {
            let Some(Some(Literal::Primitive(iceberg::spec::PrimitiveLiteral::Int(d)))) = f.partition().iter().next()
            else {
                panic!("day partition value: {:?}", f.partition())
            };
            (*d, (f.record_count(), f.lower_bounds()[&1].clone(), f.upper_bounds()[&1].clone()))
        })
        .collect();
    assert_eq!(
        by_day,
        BTreeMap::from([(20_000, (4, Datum::long(0), Datum::long(4))), (20_001, (3, Datum::long(3), Datum::long(6))),]),
        "one file per day, each row in its own day"
    );
}
