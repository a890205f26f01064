//! Position delete rewrite (SQLite catalog, local files in a temp dir): a partition's small
//! delete files become one, deletes of data files no longer live go, and the rows every
//! reader gets stay exactly the same.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use futures::TryStreamExt;
use iceberg::spec::{DataFile, NestedField, Operation, PrimitiveType, Schema, Struct, Type};
use icefall_optimizer::position_deletes::{DeleteRewriteOptions, rewrite_position_deletes};
use icefall_table::catalog::parse_ident;
use icefall_table::create::TableLayout;
use icefall_table::position_deletes::{self, Positions};
use icefall_table::{Catalog, CatalogConfig, Change, Error as TableError, LoadedTable, PendingCommit, RetryPolicy};

mod common;

const ROWS_PER_FILE: i64 = 100;
/// Partition values as users have them: path and URL characters, non-ASCII.
const PARTS: [&str; 2] = ["a/b?c#d%e ünï", "plain"];

fn batch(table: &LoadedTable, part: &str, ids: &[i64]) -> RecordBatch {
    let schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata.current_schema()).expect("arrow"));
    // Long values, nulls among them.
    let names: Vec<Option<String>> =
        ids.iter().map(|id| (id % 7 != 0).then(|| format!("{}-{id}-ü", "n".repeat(70)))).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(StringArray::from(vec![part; ids.len()])),
        Arc::new(StringArray::from(names)),
    ];
    RecordBatch::try_new(schema, columns).expect("batch")
}

async fn ids(catalog: &Catalog, table: &LoadedTable) -> Vec<i64> {
    let scan = table.to_table(catalog.file_io()).expect("table").scan().select(["id"]).build().expect("scan");
    let batches: Vec<RecordBatch> = scan.to_arrow().await.expect("read").try_collect().await.expect("batches");
    let mut ids: Vec<i64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
    ids.sort_unstable();
    ids
}

fn summary(table: &LoadedTable, key: &str) -> Option<String> {
    table.metadata.current_snapshot().and_then(|s| s.summary().additional_properties.get(key).cloned())
}

/// Each partition: three data files, each with three one-row-in-ten delete files (as an
/// engine's merge-on-read `DELETE` run three times writes them), the first partition also a
/// delete file naming two data files. Then an engine rewrites the second partition's last
/// data file without dropping its deletes (they dangle). `rewrite-position-deletes` merges
/// each partition's files into one, drops the dangling ones unread, and changes no row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_delete_files_merge_per_partition_and_deletes_of_gone_files_are_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::connect(&CatalogConfig::embedded_in(dir.path())).await.expect("catalog");
    let schema = Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::required(2, "part", Type::Primitive(PrimitiveType::String)).into(),
            NestedField::optional(3, "name", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()
        .expect("schema");
    let layout = TableLayout { schema, partition: vec!["part".into()], properties: HashMap::new(), sort_order: vec![] };
    let ident = parse_ident("ns.deleted").expect("ident");
    let mut table = catalog.load_or_create(&ident, &layout).await.expect("create");

    // (data file, its partition, its first id), three per partition.
    let mut data: Vec<(DataFile, Struct, i64)> = Vec::new();
    for (p, part) in PARTS.iter().enumerate() {
        for f in 0..3 {
            let first = (p as i64 * 3 + f) * ROWS_PER_FILE;
            let ids: Vec<i64> = (first..first + ROWS_PER_FILE).collect();
            let (files, spec_id) =
                common::write(&catalog, &table, batch(&table, part, &ids), &format!("data-{p}-{f}")).await;
            assert_eq!(files.len(), 1);
            data.push((files[0].clone(), files[0].partition().clone(), first));
            table = common::commit(&catalog, table, Change::Append { data_files: files, spec_id }).await;
        }
    }
    let spec_id = table.metadata.default_partition_spec_id();
    let mut deleted: BTreeSet<i64> = BTreeSet::new();
    let mut delete_files = Vec::new();
    let write_deletes = async |partition: &Struct, rows: Positions| {
        position_deletes::write(catalog.file_io(), &table.metadata, spec_id, partition, &rows).await.expect("deletes")
    };
    for (file, partition, first) in &data {
        for k in 0..3 {
            let positions = vec![k, k + 10, k + 20];
            deleted.extend(positions.iter().map(|p| first + p));
            let rows = Positions::from([(file.file_path().to_string(), positions)]);
            delete_files.push(write_deletes(partition, rows).await);
        }
    }
    let two =
        Positions::from([(data[0].0.file_path().to_string(), vec![50]), (data[1].0.file_path().to_string(), vec![50])]);
    deleted.extend([data[0].2 + 50, data[1].2 + 50]);
    delete_files.push(write_deletes(&data[0].1, two).await);
    let originals: Vec<String> = delete_files.iter().map(|f| f.file_path().to_string()).collect();
    table = common::commit(&catalog, table, Change::AddDeletes { delete_files, spec_id }).await;
    let expected: Vec<i64> = (0..6 * ROWS_PER_FILE).filter(|id| !deleted.contains(id)).collect();
    assert_eq!(ids(&catalog, &table).await, expected, "the deletes apply");

    // An engine's data rewrite of the last file that leaves its three delete files behind.
    let (last, _, first) = &data[5];
    let survivors: Vec<i64> = (*first..first + ROWS_PER_FILE).filter(|id| !deleted.contains(id)).collect();
    let (added, _) = common::write(&catalog, &table, batch(&table, PARTS[1], &survivors), "rewritten").await;
    let sequence = table.metadata.current_snapshot().expect("snapshot").sequence_number();
    let replace = Change::Replace {
        removed_data_files: BTreeSet::from([last.file_path().to_string()]),
        removed_delete_files: BTreeSet::new(),
        added,
        spec_id,
        planned_sequence_number: sequence,
    };
    table = common::commit(&catalog, table, replace).await;
    assert_eq!(ids(&catalog, &table).await, expected);
    assert_eq!(summary(&table, "total-delete-files").as_deref(), Some("19"));
    let before = table.clone();

    let options = DeleteRewriteOptions { min_input_files: 2, dry_run: true, ..Default::default() };
    let dry = rewrite_position_deletes(&catalog, &ident, &options).await.expect("dry run");
    assert_eq!((dry.files_in, dry.groups, dry.commits), (19, 2, 0), "{dry:?}");
    let table = catalog.load(&ident).await.expect("load");
    assert_eq!(
        table.metadata.current_snapshot_id(),
        before.metadata.current_snapshot_id(),
        "a dry run commits nothing"
    );

    let options = DeleteRewriteOptions { min_input_files: 2, ..Default::default() };
    let report = rewrite_position_deletes(&catalog, &ident, &options).await.expect("rewrite");
    assert_eq!((report.files_in, report.files_out, report.groups, report.commits), (19, 2, 2, 1), "{report:?}");
    assert_eq!(report.rows, 3 * 9 + 2 + 2 * 9, "every delete of a live file, once");
    assert!(report.notes.iter().any(|n| n.contains("3 delete files name no live data file")), "{report:?}");
    assert_eq!(report.partitions.len(), 2);
    assert!(report.partitions[0].starts_with("part=a%2Fb%3Fc%23d%25e+"), "{:?}", report.partitions);
    let json = report.json();
    assert_eq!(
        (json["rewritten_delete_files_count"].as_u64(), json["added_delete_files_count"].as_u64()),
        (Some(19), Some(2))
    );

    let table = catalog.load(&ident).await.expect("load");
    assert_eq!(ids(&catalog, &table).await, expected, "not one row changed");
    let snapshot = table.metadata.current_snapshot().expect("snapshot");
    assert_eq!(snapshot.summary().operation, Operation::Replace);
    assert_eq!(summary(&table, "icefall.operation").as_deref(), Some("rewrite-position-deletes"));
    assert_eq!(summary(&table, "total-delete-files").as_deref(), Some("2"));
    assert_eq!(summary(&table, "total-position-deletes").as_deref(), Some("47"));
    assert_eq!(summary(&table, "total-records").as_deref(), Some(&*(6 * ROWS_PER_FILE - 9).to_string()));

    // Nothing left to merge: a second run does nothing.
    let again = rewrite_position_deletes(&catalog, &ident, &options).await.expect("again");
    assert_eq!((again.files_in, again.commits), (0, 0), "{again:?}");

    // A rewrite planned before this one (same delete files) is refused, not applied twice.
    let stale = Change::RewriteDeletes { removed: BTreeSet::from([originals[0].clone()]), added: vec![], spec_id };
    let pending = PendingCommit::new(stale, HashMap::new());
    let refused = catalog.commit(before, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await;
    match refused {
        Err(TableError::Rejected { reason, .. }) => assert!(reason.contains("no longer live"), "{reason}"),
        other => panic!("a stale delete rewrite landed: {:?}", other.map(|o| o.snapshot_id)),
    }
}
