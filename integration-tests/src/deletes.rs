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
    let pending = PendingCommit::new(Change::AddDeletes { delete_files }, HashMap::new());
    catalog.commit(loaded, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await.expect("commit deletes");
    count
}
