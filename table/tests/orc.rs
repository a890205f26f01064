//! ORC data files end to end in a temp dir: written through `TableFiles` (partitioned, several
//! stripes, each codec), committed, and read back value for value through our scan.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, FixedSizeBinaryArray, Float32Array, Float64Array, Int32Array, Int64Array,
    LargeBinaryArray, RecordBatch, StringArray, Time64MicrosecondArray,
};
use futures::TryStreamExt;
use iceberg::spec::{DataFileFormat, Datum, ListType, MapType, NestedField, PrimitiveType, Schema, StructType, Type};
use icefall_table::catalog::parse_ident;
use icefall_table::create::TableLayout;
use icefall_table::files::TableFiles;
use icefall_table::{Catalog, CatalogConfig, LoadedTable, PendingCommit, RetryPolicy};

async fn catalog(dir: &std::path::Path) -> Catalog {
    Catalog::connect(&CatalogConfig::embedded_in(dir)).await.expect("connect")
}

fn schema() -> Schema {
    let p = |ty| Type::Primitive(ty);
    Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", p(PrimitiveType::Long)).into(),
            NestedField::optional(2, "flag", p(PrimitiveType::Boolean)).into(),
            NestedField::optional(3, "n", p(PrimitiveType::Int)).into(),
            NestedField::optional(4, "ratio", p(PrimitiveType::Float)).into(),
            NestedField::optional(5, "score", p(PrimitiveType::Double)).into(),
            NestedField::required(6, "day", p(PrimitiveType::Date)).into(),
            NestedField::optional(7, "at", p(PrimitiveType::Time)).into(),
            NestedField::optional(8, "name", p(PrimitiveType::String)).into(),
            NestedField::optional(9, "blob", p(PrimitiveType::Binary)).into(),
            NestedField::optional(10, "key", p(PrimitiveType::Uuid)).into(),
            NestedField::optional(11, "code", p(PrimitiveType::Fixed(4))).into(),
            NestedField::optional(12, "local", p(PrimitiveType::Timestamp)).into(),
            NestedField::optional(13, "ts", p(PrimitiveType::Timestamptz)).into(),
            NestedField::optional(14, "amount", p(PrimitiveType::Decimal { precision: 12, scale: 2 })).into(),
            NestedField::optional(
                15,
                "tags",
                Type::List(ListType::new(NestedField::list_element(16, p(PrimitiveType::String), false).into())),
            )
            .into(),
            NestedField::optional(
                17,
                "geo",
                Type::Struct(StructType::new(vec![
                    NestedField::optional(18, "lat", p(PrimitiveType::Double)).into(),
                    NestedField::optional(19, "city", p(PrimitiveType::String)).into(),
                ])),
            )
            .into(),
            NestedField::optional(
                20,
                "counts",
                Type::Map(MapType::new(
                    NestedField::map_key_element(21, p(PrimitiveType::String)).into(),
                    NestedField::map_value_element(22, p(PrimitiveType::Long), false).into(),
                )),
            )
            .into(),
            NestedField::optional(
                23,
                "items",
                Type::List(ListType::new(
                    NestedField::list_element(
                        24,
                        Type::Struct(StructType::new(vec![
                            NestedField::required(25, "sku", p(PrimitiveType::String)).into(),
                            NestedField::optional(26, "at", p(PrimitiveType::Timestamptz)).into(),
                            NestedField::optional(27, "price", p(PrimitiveType::Decimal { precision: 9, scale: 2 }))
                                .into(),
                        ])),
                        true,
                    )
                    .into(),
                )),
            )
            .into(),
        ])
        .build()
        .expect("schema")
}

/// Microseconds of row `i`'s timestamps: from before 1970 (whole and fractional seconds, but
/// not within the second before the epoch, which ORC Java cannot represent) to 2100.
fn micros(i: i64) -> i64 {
    match i % 5 {
        0 => -86_399_750_000 - i,       // 1969-12-31 00:00:00.25, minus i µs
        1 => 1_700_000_000_000_000 + i, // 2023, µs precision
        2 => 4_102_444_800_000_000,     // 2100-01-01, whole seconds
        _ => 1_420_070_400_000_000 + i * 1_000_000_007 % 86_400_000_000, // around ORC's epoch
    }
}

/// Rows `from..to`: every fourth value null, a NaN score, ten days.
fn batch(schema: &arrow_schema::SchemaRef, from: i64, to: i64) -> RecordBatch {
    let ids: Vec<i64> = (from..to).collect();
    let null = |i: i64| i % 4 == 3;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(BooleanArray::from(ids.iter().map(|&i| (!null(i)).then_some(i % 2 == 0)).collect::<Vec<_>>())),
        Arc::new(Int32Array::from(ids.iter().map(|&i| (!null(i)).then_some(i as i32 - 500)).collect::<Vec<_>>())),
        Arc::new(Float32Array::from(ids.iter().map(|&i| (!null(i)).then_some(i as f32 / 8.0)).collect::<Vec<_>>())),
        Arc::new(Float64Array::from(
            ids.iter()
                .map(|&i| (!null(i)).then_some(if i == 5 { f64::NAN } else { i as f64 * 1.5 }))
                .collect::<Vec<_>>(),
        )),
        Arc::new(Date32Array::from(ids.iter().map(|&i| 19_000 + (i % 10) as i32).collect::<Vec<_>>())),
        Arc::new(Time64MicrosecondArray::from(
            ids.iter().map(|&i| (!null(i)).then_some(i * 1_000_003 % 86_400_000_000)).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            ids.iter()
                .map(|&i| (!null(i)).then(|| format!("name-{i:05}-{}", "x".repeat((i % 30) as usize))))
                .collect::<Vec<_>>(),
        )),
        Arc::new(LargeBinaryArray::from(
            ids.iter()
                .map(|&i| (!null(i)).then(|| i.to_be_bytes().to_vec()))
                .collect::<Vec<_>>()
                .iter()
                .map(|v| v.as_deref())
                .collect::<Vec<_>>(),
        )),
        Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                ids.iter().map(|&i| (!null(i)).then(|| uuid::Uuid::from_u128(i as u128 * 7919).into_bytes())),
                16,
            )
            .expect("uuids"),
        ),
        Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                ids.iter().map(|&i| (!null(i)).then(|| (i as u32).to_be_bytes())),
                4,
            )
            .expect("fixed"),
        ),
        Arc::new(arrow_array::TimestampMicrosecondArray::from(
            ids.iter().map(|&i| (!null(i)).then_some(micros(i))).collect::<Vec<_>>(),
        )),
        Arc::new(
            arrow_array::TimestampMicrosecondArray::from(
                ids.iter().map(|&i| (!null(i)).then_some(micros(i + 1))).collect::<Vec<_>>(),
            )
            .with_timezone("+00:00"),
        ),
        Arc::new(
            arrow_array::Decimal128Array::from(
                ids.iter().map(|&i| (!null(i)).then_some((i as i128 - 1500) * 1_000_003)).collect::<Vec<_>>(),
            )
            .with_precision_and_scale(12, 2)
            .expect("decimal"),
        ),
    ];
    // Nested columns through arrow-json, in exactly the table's Arrow types: null and empty
    // lists, null structs and children, null maps and values, structs inside lists.
    let nested_fields: Vec<_> = schema.fields().iter().skip(columns.len()).cloned().collect();
    let nested_schema = Arc::new(arrow_schema::Schema::new(nested_fields));
    let lines: Vec<String> = ids
        .iter()
        .map(|&i| {
            serde_json::json!({
                "tags": match i % 5 { 0 => serde_json::json!(null), 1 => serde_json::json!([]), _ => serde_json::json!([format!("t{i}"), null, "x"]) },
                "geo": if i % 6 == 0 { serde_json::json!(null) } else { serde_json::json!({"lat": i as f64 / 3.0, "city": if i % 4 == 0 { serde_json::json!(null) } else { serde_json::json!(format!("c{}", i % 9)) }}) },
                "counts": if i % 7 == 0 { serde_json::json!(null) } else { serde_json::json!({"a": i, "b": if i % 2 == 0 { serde_json::json!(null) } else { serde_json::json!(-i) }}) },
                "items": if i % 3 == 0 { serde_json::json!(null) } else { serde_json::json!([
                    {"sku": format!("s{i}"), "at": "2026-11-22T10:00:00.123456Z", "price": format!("{}.{:02}", i % 1000, i % 100)},
                    {"sku": "z", "at": null, "price": null}
                ]) },
            })
            .to_string()
        })
        .collect();
    let mut decoder = arrow_json::ReaderBuilder::new(nested_schema).build_decoder().expect("json decoder");
    decoder.decode(lines.join("\n").as_bytes()).expect("decode");
    let nested = decoder.flush().expect("flush").expect("rows");
    let mut columns = columns;
    columns.extend(nested.columns().iter().cloned());
    RecordBatch::try_new(Arc::clone(schema), columns).expect("batch")
}

/// The primitive fields inside the nested columns (the table assigns their ids).
const NESTED_LEAVES: [&str; 8] = [
    "tags.element",
    "geo.lat",
    "geo.city",
    "counts.key",
    "counts.value",
    "items.element.sku",
    "items.element.at",
    "items.element.price",
];

async fn create(catalog: &Catalog, name: &str, properties: &[(&str, &str)], partition: &[&str]) -> LoadedTable {
    let mut props: HashMap<String, String> = properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    props.insert("write.format.default".into(), "orc".into());
    let layout = TableLayout {
        schema: schema(),
        partition: partition.iter().map(|p| p.to_string()).collect(),
        properties: props,
        sort_order: vec![],
    };
    catalog.load_or_create(&parse_ident(name).expect("ident"), &layout).await.expect("create")
}

async fn scan_sorted(catalog: &Catalog, name: &str) -> RecordBatch {
    let loaded = catalog.load(&parse_ident(name).expect("ident")).await.expect("load");
    let table = loaded.to_table(catalog.file_io()).expect("table");
    let scan = table.scan().select_all().build().expect("scan");
    let tasks: Vec<_> = scan.plan_files().await.expect("plan").try_collect().await.expect("plan");
    let batches: Vec<RecordBatch> = icefall_table::read::read_tasks(&table, tasks).try_collect().await.expect("read");
    let all = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).expect("concat");
    let ids = all.column(0).as_primitive::<Int64Type>();
    let order = arrow_ord::sort::sort_to_indices(ids, None, None).expect("sort");
    arrow_select::take::take_record_batch(&all, &order).expect("take")
}

#[tokio::test]
async fn orc_files_round_trip_every_supported_type_with_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    for codec in ["zstd", "zlib", "none"] {
        let name = format!("ns.orc_{codec}");
        // Small stripes: several per file; partitioned by day: several files.
        let table = create(
            &catalog,
            &name,
            &[("write.orc.compression-codec", codec), ("write.orc.stripe-size-bytes", "20000")],
            &["day"],
        )
        .await;
        let files =
            TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None).expect("files");
        assert_eq!(files.format(), DataFileFormat::Orc);
        let arrow = Arc::new(files.arrow_schema().expect("arrow schema"));
        let mut writer = files.open(format!("w-{codec}")).expect("open");
        let expected: Vec<RecordBatch> = (0..6).map(|i| batch(&arrow, i * 500, (i + 1) * 500)).collect();
        for b in &expected {
            writer.write(b.clone()).await.expect("write");
        }
        let data_files = writer.close().await.expect("close");
        assert_eq!(data_files.len(), 10, "{codec}: one file per day");
        let mut nested_sizes = std::collections::BTreeMap::new();
        for f in &data_files {
            assert_eq!(f.file_format(), DataFileFormat::Orc);
            assert!(f.file_path().ends_with(".orc"), "{}", f.file_path());
            assert_eq!(f.record_count(), 300);
            assert!(f.split_offsets().is_some_and(|s| s.len() > 1), "{codec}: several stripes");
            for id in 1..=14 {
                assert!(f.column_sizes().get(&id).is_some_and(|s| *s > 0), "{codec}: column size of {id}");
                assert_eq!(f.value_counts().get(&id), Some(&300));
            }
            // Nested values: sizes per leaf; counts and bounds inside structs only (none inside
            // lists and maps: never pruned by).
            for name in NESTED_LEAVES {
                let id = table.metadata.current_schema().field_id_by_name(name).expect("nested leaf");
                *nested_sizes.entry(id).or_insert(0) += f
                    .column_sizes()
                    .get(&id)
                    .copied()
                    .unwrap_or_else(|| panic!("leaf size of {id}: {:?}", f.column_sizes()));
                let in_struct = name.starts_with("geo.");
                assert_eq!(f.value_counts().contains_key(&id), in_struct, "{name}");
                assert_eq!(f.lower_bounds().contains_key(&id), in_struct, "{name}");
            }
            // Day d holds the ids ≡ d (mod 10): for odd days half are ≡ 3 (mod 4), i.e. null.
            let day = (0..10).find(|d| f.lower_bounds()[&6] == Datum::date(19_000 + d)).expect("day bound");
            // `geo` is null for ids ≡ 0 (mod 6), `geo.city` also for ids ≡ 0 (mod 4).
            let ids: Vec<i64> = (0..3000).filter(|i| i % 10 == day as i64).collect();
            let id_of = |name: &str| table.metadata.current_schema().field_id_by_name(name).expect("field");
            let (lat, city) = (id_of("geo.lat"), id_of("geo.city"));
            let null_geo = ids.iter().filter(|i| *i % 6 == 0).count() as u64;
            let null_city = ids.iter().filter(|i| *i % 6 == 0 || *i % 4 == 0).count() as u64;
            assert_eq!((f.value_counts()[&lat], f.null_value_counts()[&lat]), (300, null_geo));
            assert_eq!((f.value_counts()[&city], f.null_value_counts()[&city]), (300, null_city));
            let lats: Vec<i64> = ids.iter().copied().filter(|i| i % 6 != 0).collect();
            let (low, high) = (lats.iter().min().expect("lat"), lats.iter().max().expect("lat"));
            assert_eq!(f.lower_bounds()[&lat], Datum::double(*low as f64 / 3.0));
            assert_eq!(f.upper_bounds()[&lat], Datum::double(*high as f64 / 3.0));
            assert_eq!(f.upper_bounds()[&6], f.lower_bounds()[&6]);
            assert_eq!(f.null_value_counts().get(&2), Some(&if day % 2 == 1 { 150 } else { 0 }));
            assert_eq!(f.nan_value_counts().get(&5), Some(&u64::from(day == 5)), "id 5's score is NaN");
            let on_disk = std::fs::metadata(f.file_path().trim_start_matches("file:")).expect("file").len();
            assert_eq!(f.file_size_in_bytes(), on_disk);
        }
        assert!(nested_sizes.values().all(|s| *s > 0), "{codec}: every nested leaf has bytes: {nested_sizes:?}");
        let first_day = data_files.iter().find(|f| f.lower_bounds()[&6] == Datum::date(19_000)).expect("day 0");
        assert_eq!(first_day.lower_bounds()[&1], Datum::long(0));
        assert_eq!(first_day.upper_bounds()[&1], Datum::long(2990));
        assert_eq!(first_day.lower_bounds()[&8], Datum::string("name-00000-"));
        // Day 0 holds ids ≡ 0 (mod 10): timestamps before 1970, id µs before 00:00:00.25.
        assert_eq!(first_day.lower_bounds()[&12], Datum::timestamp_micros(micros(2990)));
        assert_eq!(first_day.upper_bounds()[&12], Datum::timestamp_micros(micros(0)));
        let total: u64 = data_files.iter().map(|f| f.file_size_in_bytes()).sum();

        let base = catalog.load(&parse_ident(&name).expect("ident")).await.expect("load");
        let append = PendingCommit::append(data_files, base.metadata.default_partition_spec_id(), HashMap::new());
        catalog.commit(base, &append, |_| Ok(HashMap::new()), &RetryPolicy::default()).await.expect("commit");

        let read = scan_sorted(&catalog, &name).await;
        let written = arrow_select::concat::concat_batches(&arrow, &expected).expect("concat");
        assert_eq!(read.num_rows(), 3000);
        for (i, field) in arrow.fields().iter().enumerate() {
            let (got, want) = (read.column(i), written.column(i));
            if field.name() == "score" {
                // NaN != NaN: compare as text.
                let text = |a: &ArrayRef| {
                    arrow_cast::display::ArrayFormatter::try_new(a, &Default::default())
                        .map(|f| (0..a.len()).map(|r| f.value(r).to_string()).collect::<Vec<_>>())
                        .expect("format")
                };
                assert_eq!(text(got), text(want), "{codec}: {}", field.name());
            } else {
                assert_eq!(got.as_ref(), want.as_ref(), "{codec}: column {}", field.name());
            }
        }
        eprintln!("{codec}: 3000 rows in {total} bytes");
    }
}

#[tokio::test]
async fn bad_orc_table_properties_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let bad = [
        ("write.orc.compression-codec", "lzo", "use zstd, zlib or none"),
        ("write.orc.stripe-size-bytes", "0", "must be a positive number"),
    ];
    for (i, (key, value, needle)) in bad.into_iter().enumerate() {
        let table = create(&catalog, &format!("ns.bad{i}"), &[(key, value)], &[]).await;
        let err = TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(key) && err.contains(needle), "{err}");
    }
}

/// Position deletes count rows from the start of the data file, whichever stripes a task
/// covers: every row deleted by position stays deleted when the file is read whole or stripe
/// by stripe (as tasks split at split offsets read it).
#[tokio::test]
async fn position_deletes_apply_to_orc_files_read_whole_or_by_stripe() {
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema as ArrowSchema};
    use iceberg::spec::{DataContentType, DataFileBuilder};
    use icefall_table::Change;

    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let name = "ns.orc_deletes";
    let table = create(&catalog, name, &[("write.orc.stripe-size-bytes", "20000")], &[]).await;
    let files = TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None).expect("files");
    let arrow = Arc::new(files.arrow_schema().expect("arrow schema"));
    let mut writer = files.open("w".into()).expect("open");
    for i in 0..4 {
        writer.write(batch(&arrow, i * 500, (i + 1) * 500)).await.expect("write");
    }
    let data_files = writer.close().await.expect("close");
    let [data_file] = &data_files[..] else { panic!("one file: {}", data_files.len()) };
    let stripes = data_file.split_offsets().expect("split offsets").to_vec();
    assert!(stripes.len() > 2, "several stripes: {stripes:?}");
    let (path, size) = (data_file.file_path().to_string(), data_file.file_size_in_bytes());
    let base = catalog.load(&parse_ident(name).expect("ident")).await.expect("load");
    let append = PendingCommit::append(data_files, base.metadata.default_partition_spec_id(), HashMap::new());
    catalog.commit(base, &append, |_| Ok(HashMap::new()), &RetryPolicy::default()).await.expect("append");

    // Every 7th row, plus the last one; a row of another file is ignored.
    let mut positions: Vec<i64> = (0..2000).step_by(7).collect();
    positions.push(1999);
    let mut paths = vec![path.clone(); positions.len()];
    paths.push("file:/elsewhere.orc".into());
    positions.push(3);
    let field = |name: &str, ty: DataType, id: i32| {
        Field::new(name, ty, false).with_metadata(HashMap::from([("PARQUET:field_id".to_string(), id.to_string())]))
    };
    let delete_schema = Arc::new(ArrowSchema::new(vec![
        field("file_path", DataType::Utf8, 2147483546),
        field("pos", DataType::Int64, 2147483545),
    ]));
    let deletes = RecordBatch::try_new(
        delete_schema.clone(),
        vec![Arc::new(StringArray::from(paths)), Arc::new(Int64Array::from(positions.clone()))],
    )
    .expect("deletes");
    let mut buffer = Vec::new();
    let mut parquet = parquet::arrow::ArrowWriter::try_new(&mut buffer, delete_schema, None).expect("writer");
    parquet.write(&deletes).expect("write deletes");
    parquet.close().expect("close deletes");
    let delete_path = format!("{}/data/pos-deletes.parquet", table.metadata.location());
    let delete_size = buffer.len() as u64;
    catalog.file_io().new_output(&delete_path).expect("output").write(buffer.into()).await.expect("store");
    let delete_file = DataFileBuilder::default()
        .content(DataContentType::PositionDeletes)
        .file_path(delete_path)
        .file_format(DataFileFormat::Parquet)
        .partition(iceberg::spec::Struct::empty())
        .partition_spec_id(0)
        .record_count(deletes.num_rows() as u64)
        .file_size_in_bytes(delete_size)
        .build()
        .expect("delete file");
    let base = catalog.load(&parse_ident(name).expect("ident")).await.expect("load");
    let pending =
        PendingCommit::new(Change::AddDeletes { delete_files: vec![delete_file], spec_id: 0 }, HashMap::new());
    catalog.commit(base, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await.expect("deletes");

    let deleted: std::collections::BTreeSet<i64> = positions[..positions.len() - 1].iter().copied().collect();
    let expected: Vec<i64> = (0..2000).filter(|id| !deleted.contains(id)).collect();
    let read = scan_sorted(&catalog, name).await;
    assert_eq!(read.column(0).as_primitive::<Int64Type>().values().to_vec(), expected, "the whole file");

    // The same file as one task per stripe.
    let loaded = catalog.load(&parse_ident(name).expect("ident")).await.expect("load");
    let table = loaded.to_table(catalog.file_io()).expect("table");
    let scan = table.scan().select(["id"]).build().expect("scan");
    let tasks: Vec<_> = scan.plan_files().await.expect("plan").try_collect().await.expect("plan");
    let [task] = &tasks[..] else { panic!("one task: {}", tasks.len()) };
    assert_eq!(task.deletes.len(), 1);
    let mut ends = stripes[1..].to_vec();
    ends.push(size as i64);
    let split: Vec<_> = stripes
        .iter()
        .zip(&ends)
        .map(|(start, end)| {
            let mut part = task.clone();
            part.start = *start as u64;
            part.length = (*end - *start) as u64;
            part
        })
        .collect();
    let batches: Vec<RecordBatch> = icefall_table::read::read_tasks(&table, split).try_collect().await.expect("read");
    let ids: Vec<i64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
    assert_eq!(ids, expected, "stripe by stripe, in file order");
}
