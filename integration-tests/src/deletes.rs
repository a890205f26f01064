//! Row-level deletes as engines write them (merge-on-read): equality-delete files on `id`,
//! one per partition, committed as a row delta. Stands in for Spark's `DELETE` in tests that
//! must prove compaction never brings a deleted row back.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{BooleanArray, RecordBatch};
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::spec::DataFileFormat;
use iceberg::writer::base_writer::equality_delete_writer::{
    EqualityDeleteFileWriterBuilder, EqualityDeleteWriterConfig,
};
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{DefaultFileNameGenerator, DefaultLocationGenerator};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use icefall_table::catalog::parse_ident;
use icefall_table::{Catalog, Change, PendingCommit, RetryPolicy};
use parquet::file::properties::WriterProperties;

use crate::tables::scan;

/// Deletes the rows whose `id` is in `ids`; returns the number of delete files committed.
pub async fn delete_ids(catalog: &Catalog, table: &str, ids: &BTreeSet<i64>) -> usize {
    let loaded = catalog.load(&parse_ident(table).expect("ident")).await.expect("load");
    let spec_id = loaded.metadata.default_partition_spec_id();
    let schema = loaded.metadata.current_schema().clone();
    let id_field = schema.field_by_name("id").expect("an id column").id;
    let config = EqualityDeleteWriterConfig::new(vec![id_field], schema.clone()).expect("delete config");
    let delete_schema =
        Arc::new(iceberg::arrow::arrow_schema_to_schema(config.projected_arrow_schema_ref()).expect("delete schema"));
    let rolling = RollingFileWriterBuilder::new_with_default_file_size(
        ParquetWriterBuilder::new(WriterProperties::default(), delete_schema),
        catalog.file_io().clone(),
        DefaultLocationGenerator::new(&loaded.metadata).expect("locations"),
        DefaultFileNameGenerator::new(
            format!("eq-delete-{}", uuid::Uuid::new_v4().simple()),
            None,
            DataFileFormat::Parquet,
        ),
    );
    let builder = EqualityDeleteFileWriterBuilder::new(rolling, config);
    let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(
        schema,
        loaded.metadata.default_partition_spec().clone(),
    )
    .expect("splitter");
    let mut delete_files = Vec::new();
    for batch in scan(catalog, table, &[]).await {
        let values = batch.column_by_name("id").expect("id").as_primitive::<Int64Type>();
        let mask: BooleanArray = values.iter().map(|v| Some(v.is_some_and(|id| ids.contains(&id)))).collect();
        let rows: RecordBatch = arrow_select::filter::filter_record_batch(&batch, &mask).expect("filter");
        if rows.num_rows() == 0 {
            continue;
        }
        for (key, part) in splitter.split(&rows).expect("split") {
            let mut writer = builder.build(Some(key)).await.expect("delete writer");
            writer.write(part).await.expect("write deletes");
            delete_files.extend(writer.close().await.expect("close deletes"));
        }
    }
    let count = delete_files.len();
    let pending = PendingCommit::new(Change::AddDeletes { delete_files, spec_id }, HashMap::new());
    catalog.commit(loaded, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await.expect("commit deletes");
    count
}

/// Deletes the first `per_file` rows of every data file with position-delete files (one per
/// data file, in its partition), as engines' merge-on-read `DELETE` writes them. Returns the
/// ids of the deleted rows.
pub async fn delete_first_rows(catalog: &Catalog, table: &str, per_file: usize) -> BTreeSet<i64> {
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema as ArrowSchema};
    use futures::{StreamExt, TryStreamExt};
    use iceberg::spec::{DataContentType, DataFileBuilder};

    let loaded = catalog.load(&parse_ident(table).expect("ident")).await.expect("load");
    let spec_id = loaded.metadata.default_partition_spec_id();
    let scan_table = loaded.to_table(catalog.file_io()).expect("table");
    let scan = scan_table.scan().select(["id"]).build().expect("scan");
    let tasks: Vec<iceberg::scan::FileScanTask> =
        scan.plan_files().await.expect("plan").try_collect().await.expect("plan");
    // The spec's reserved field ids of position-delete files.
    let field = |name: &str, ty: DataType, id: i32| {
        Field::new(name, ty, false).with_metadata(HashMap::from([("PARQUET:field_id".to_string(), id.to_string())]))
    };
    let delete_schema = Arc::new(ArrowSchema::new(vec![
        field("file_path", DataType::Utf8, 2147483546),
        field("pos", DataType::Int64, 2147483545),
    ]));
    let mut deleted = BTreeSet::new();
    let mut delete_files = Vec::new();
    for task in tasks {
        // Positions are physical rows: read the file without the deletes already on it.
        let mut raw = task.clone();
        raw.deletes.clear();
        let reader = scan_table.reader_builder().build();
        let one = futures::stream::iter(vec![Ok(raw)]).boxed();
        let batches: Vec<RecordBatch> =
            reader.read(one).expect("read").stream().try_collect().await.expect("read file");
        let ids: Vec<i64> =
            batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
        let n = per_file.min(ids.len());
        deleted.extend(&ids[..n]);
        let batch = RecordBatch::try_new(
            delete_schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![task.data_file_path.clone(); n])),
                Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
            ],
        )
        .expect("delete batch");
        let path = format!("{}/data/pos-delete-{}.parquet", loaded.metadata.location(), uuid::Uuid::new_v4().simple());
        let mut buffer = Vec::new();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(&mut buffer, delete_schema.clone(), None).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let size = buffer.len() as u64;
        catalog.file_io().new_output(&path).expect("output").write(buffer.into()).await.expect("store");
        delete_files.push(
            DataFileBuilder::default()
                .content(DataContentType::PositionDeletes)
                .file_path(path)
                .file_format(DataFileFormat::Parquet)
                .partition(task.partition.clone().expect("partition values"))
                .partition_spec_id(loaded.metadata.default_partition_spec_id())
                .record_count(n as u64)
                .file_size_in_bytes(size)
                .referenced_data_file(Some(task.data_file_path.clone()))
                .build()
                .expect("delete file"),
        );
    }
    let pending = PendingCommit::new(Change::AddDeletes { delete_files, spec_id }, HashMap::new());
    catalog.commit(loaded, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await.expect("commit deletes");
    deleted
}
