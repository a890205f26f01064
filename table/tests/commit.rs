//! The commit path against a real SQLite catalog and local files in a temp dir.

use std::collections::HashMap;

use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, DataFileFormat, NestedField, PrimitiveType, Schema, Type,
};
use icefall_table::catalog::parse_ident;
use icefall_table::create::TableLayout;
use icefall_table::offsets::{self, OffsetMap, committed_offsets};
use icefall_table::state::main_ancestry;
use icefall_table::{Catalog, CatalogConfig, Error, PendingCommit, RetryPolicy};

async fn catalog(dir: &std::path::Path) -> Catalog {
    Catalog::connect(&CatalogConfig::embedded_in(dir)).await.expect("connect")
}

fn layout() -> TableLayout {
    let schema = Schema::builder()
        .with_fields(vec![NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into()])
        .build()
        .expect("schema");
    TableLayout { schema, partition: vec![], properties: HashMap::new(), sort_order: vec![] }
}

fn data_file(name: &str, rows: u64) -> DataFile {
    DataFileBuilder::default()
        .content(DataContentType::Data)
        .file_path(format!("file:///nowhere/{name}.parquet"))
        .file_format(DataFileFormat::Parquet)
        .record_count(rows)
        .file_size_in_bytes(100 * rows)
        .partition_spec_id(0)
        .build()
        .expect("data file")
}

fn with_offsets(
    partition: i32,
    offset: i64,
) -> impl Fn(&iceberg::spec::TableMetadata) -> Result<HashMap<String, String>, String> {
    move |metadata| {
        let mut map: OffsetMap = committed_offsets(metadata).map_err(|e| e.to_string())?;
        map.entry("t".into()).or_default().insert(partition, offset);
        Ok(HashMap::from([(offsets::OFFSETS.to_string(), offsets::encode(&map))]))
    }
}

#[tokio::test]
async fn concurrent_appends_rebase_and_both_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let ident = parse_ident("ns.events").expect("ident");
    let base = catalog.load_or_create(&ident, &layout()).await.expect("create");

    // Both commits start from the same base: the second must rebase onto the first.
    let first = PendingCommit::append(vec![data_file("a", 10)], 0, HashMap::new());
    let second = PendingCommit::append(vec![data_file("b", 5)], 0, HashMap::new());
    let policy = RetryPolicy::default();
    let one = catalog.commit(base.clone(), &first, with_offsets(0, 10), &policy).await.expect("first");
    let two = catalog.commit(base, &second, with_offsets(1, 5), &policy).await.expect("second");
    assert_eq!(one.attempts, 1);
    assert_eq!(two.attempts, 2, "the second commit conflicted once and rebased");

    let table = catalog.load(&ident).await.expect("load");
    let chain: Vec<_> = main_ancestry(&table.metadata).collect();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].parent_snapshot_id(), Some(chain[1].snapshot_id()));
    assert!(chain[0].sequence_number() > chain[1].sequence_number());
    let summary = &chain[0].summary().additional_properties;
    assert_eq!(summary.get("total-records").map(String::as_str), Some("15"));
    assert_eq!(summary.get("total-data-files").map(String::as_str), Some("2"));
    // The rebased commit merged its offsets into the map of the base it landed on.
    let offsets = committed_offsets(&table.metadata).expect("offsets");
    assert_eq!(offsets["t"].get(&0), Some(&10));
    assert_eq!(offsets["t"].get(&1), Some(&5));
    // Both files are live in the current snapshot.
    let list = catalog.manifest_list(&table.metadata, chain[0]).await.expect("manifest list");
    let mut paths = Vec::new();
    for manifest in list.entries() {
        let m = manifest.load_manifest(catalog.file_io()).await.expect("manifest");
        paths.extend(m.entries().iter().map(|e| e.data_file().file_path().to_string()));
    }
    paths.sort();
    assert_eq!(paths, vec!["file:///nowhere/a.parquet", "file:///nowhere/b.parquet"]);
}

#[tokio::test]
async fn a_failed_requirement_rejects_without_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let ident = parse_ident("ns.events").expect("ident");
    let base = catalog.load_or_create(&ident, &layout()).await.expect("create");
    let pending = PendingCommit::append(vec![data_file("a", 1)], 0, HashMap::new());
    let err = catalog
        .commit(base, &pending, |_| Err("fenced".to_string()), &RetryPolicy::default())
        .await
        .expect_err("rejected");
    assert!(matches!(err, Error::Rejected { ref reason, .. } if reason == "fenced"), "{err}");
    assert!(!err.is_retryable());
    let table = catalog.load(&ident).await.expect("load");
    assert_eq!(table.metadata.snapshots().count(), 0);
}

#[tokio::test]
async fn a_commit_that_already_landed_is_recognised_by_its_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let ident = parse_ident("ns.events").expect("ident");
    let base = catalog.load_or_create(&ident, &layout()).await.expect("create");
    let pending = PendingCommit::append(vec![data_file("a", 1)], 0, HashMap::new());
    let policy = RetryPolicy::default();
    let landed = catalog.commit(base.clone(), &pending, with_offsets(0, 1), &policy).await.expect("commit");
    // A retry after an unknown outcome, from the stale base: no second snapshot.
    let again = catalog.commit(base, &pending, with_offsets(0, 1), &policy).await.expect("retry");
    assert!(again.already_committed);
    assert_eq!(again.snapshot_id, landed.snapshot_id);
    let table = catalog.load(&ident).await.expect("load");
    assert_eq!(table.metadata.snapshots().count(), 1);
}

#[tokio::test]
async fn creating_twice_loads_the_existing_table_and_partition_specs_bind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let ident = parse_ident("ns.events").expect("ident");
    let mut layout = layout();
    layout.partition = vec!["bucket(8, id)".into()];
    let a = catalog.load_or_create(&ident, &layout).await.expect("create");
    let b = catalog.load_or_create(&ident, &layout).await.expect("load");
    assert_eq!(a.metadata_location, b.metadata_location);
    let spec = a.metadata.default_partition_spec();
    assert_eq!(spec.fields()[0].name, "id_bucket");
    assert_eq!(a.metadata.properties().get("write.parquet.compression-codec").map(String::as_str), Some("zstd"));
    assert_eq!(catalog.list_tables(ident.namespace()).await.expect("list"), vec![ident.clone()]);
    assert!(matches!(catalog.load(&parse_ident("ns.nope").expect("ident")).await, Err(Error::TableNotFound(_))));
}

/// With `write.metadata.delete-after-commit.enabled`, the metadata files of a table stay
/// bounded by `write.metadata.previous-versions-max` over many commits (a streaming writer
/// commits every few seconds); every file the log names still exists.
#[tokio::test]
async fn metadata_files_stay_bounded_over_500_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let ident = parse_ident("ns.bounded").expect("ident");
    let mut layout = layout();
    layout.properties = HashMap::from([
        ("write.metadata.delete-after-commit.enabled".to_string(), "true".to_string()),
        ("write.metadata.previous-versions-max".to_string(), "5".to_string()),
    ]);
    let mut table = catalog.load_or_create(&ident, &layout).await.expect("create");
    for n in 0..500 {
        let pending = PendingCommit::append(vec![], 0, HashMap::from([("test.n".to_string(), n.to_string())]));
        table = catalog
            .commit(table, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default())
            .await
            .expect("commit")
            .table;
    }
    let metadata_dir =
        std::path::Path::new(&table.metadata_location.replace("file://", "")).parent().expect("dir").to_path_buf();
    let json: Vec<_> = std::fs::read_dir(&metadata_dir)
        .expect("metadata dir")
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".metadata.json"))
        .collect();
    assert_eq!(json.len(), 6, "the current file and the 5 the log keeps: {json:?}");
    for entry in table.metadata.metadata_log() {
        assert!(
            json.iter().any(|p| entry.metadata_file.ends_with(p.rsplit('/').next().expect("name"))),
            "{}",
            entry.metadata_file
        );
    }
}

/// `write.metadata.path` and `write.data.path` place new metadata and data files where the
/// table says, as Java's writers do.
#[tokio::test]
async fn metadata_and_data_paths_follow_the_table_properties() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let ident = parse_ident("ns.placed").expect("ident");
    let (meta, data) = (dir.path().join("elsewhere/meta"), dir.path().join("elsewhere/data"));
    let mut layout = layout();
    layout.properties = HashMap::from([
        ("write.metadata.path".to_string(), format!("file://{}", meta.display())),
        ("write.data.path".to_string(), format!("file://{}", data.display())),
    ]);
    let table = catalog.load_or_create(&ident, &layout).await.expect("create");
    let files = icefall_table::files::TableFiles::new(
        "ns.placed".into(),
        table.metadata.clone(),
        catalog.file_io().clone(),
        None,
    )
    .expect("files");
    let schema = std::sync::Arc::new(files.arrow_schema().expect("arrow schema"));
    let batch =
        arrow_array::RecordBatch::try_new(schema, vec![std::sync::Arc::new(arrow_array::Int64Array::from(vec![1, 2]))])
            .expect("batch");
    let mut writer = files.open("placed".into()).expect("open");
    writer.write(batch).await.expect("write");
    let data_files = writer.close().await.expect("close");
    assert!(data_files.iter().all(|f| f.file_path().contains("elsewhere/data/")), "{:?}", data_files[0].file_path());
    let pending = PendingCommit::append(data_files, files.spec_id(), HashMap::new());
    let table =
        catalog.commit(table, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await.expect("commit").table;
    assert!(table.metadata_location.contains("elsewhere/meta/"), "{}", table.metadata_location);
    let snapshot = table.metadata.current_snapshot().expect("snapshot");
    assert!(snapshot.manifest_list().contains("elsewhere/meta/"), "{}", snapshot.manifest_list());
}

/// A commit that wrote its manifest, lost the race, then found its requirement broken leaves
/// no manifest behind (nothing will ever reference it).
#[tokio::test]
async fn a_rejected_commit_deletes_the_manifests_it_wrote() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let ident = parse_ident("ns.leaks").expect("ident");
    let stale = catalog.load_or_create(&ident, &layout()).await.expect("create");
    let first = PendingCommit::append(vec![data_file("a", 1)], 0, HashMap::new());
    let landed = catalog.commit(stale.clone(), &first, |_| Ok(HashMap::new()), &RetryPolicy::default()).await;
    let landed = landed.expect("first commit").table;
    let manifests = |dir: &std::path::Path| -> Vec<String> {
        let metadata = dir.join("warehouse/ns/leaks/metadata");
        let mut names: Vec<String> = std::fs::read_dir(metadata)
            .expect("metadata dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with("-m.avro"))
            .collect();
        names.sort();
        names
    };
    let before = manifests(dir.path());
    // From the stale base: the first attempt writes its manifest and loses the race; on the
    // reloaded table the requirement no longer holds.
    let second = PendingCommit::append(vec![data_file("b", 1)], 0, HashMap::new());
    let only_on_empty = |m: &iceberg::spec::TableMetadata| {
        if m.snapshots().count() == 0 { Ok(HashMap::new()) } else { Err("the table is no longer empty".to_string()) }
    };
    let result = catalog.commit(stale, &second, only_on_empty, &RetryPolicy::default()).await;
    assert!(matches!(result, Err(Error::Rejected { .. })), "{result:?}");
    assert_eq!(manifests(dir.path()), before, "no manifest of the rejected commit is left");
    assert_eq!(landed.metadata.snapshots().count(), 1);
}

/// Compaction's check for deletes added since it planned covers only the files it replaces: a
/// delete in another partition lets it land, one in the same partition rejects it.
#[tokio::test]
async fn a_rewrite_is_rejected_only_by_new_deletes_that_apply_to_its_files() {
    use iceberg::spec::{Literal, Struct};
    use icefall_table::Change;
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let ident = parse_ident("ns.scoped").expect("ident");
    let mut layout = layout();
    layout.partition = vec!["id".into()];
    let table = catalog.load_or_create(&ident, &layout).await.expect("create");
    let in_partition = |name: &str, id: i64, content: DataContentType| {
        DataFileBuilder::default()
            .content(content)
            .file_path(format!("file:///nowhere/{name}.parquet"))
            .file_format(DataFileFormat::Parquet)
            .partition(Struct::from_iter([Some(Literal::long(id))]))
            .record_count(1)
            .file_size_in_bytes(100)
            .partition_spec_id(0)
            .build()
            .expect("file")
    };
    let data = vec![
        in_partition("a1", 1, DataContentType::Data),
        in_partition("a2", 1, DataContentType::Data),
        in_partition("b1", 2, DataContentType::Data),
        in_partition("b2", 2, DataContentType::Data),
    ];
    let append = PendingCommit::append(data, 0, HashMap::new());
    let policy = RetryPolicy::default();
    let table = catalog.commit(table, &append, |_| Ok(HashMap::new()), &policy).await.expect("append").table;
    let planned = table.metadata.last_sequence_number();
    let delete = in_partition("a-deletes", 1, DataContentType::PositionDeletes);
    let deletes = PendingCommit::new(Change::AddDeletes { delete_files: vec![delete], spec_id: 0 }, HashMap::new());
    let table = catalog.commit(table, &deletes, |_| Ok(HashMap::new()), &policy).await.expect("deletes").table;
    // Sizes in the summary count delete files too, as Java's do.
    let summary = &table.metadata.current_snapshot().expect("snapshot").summary().additional_properties;
    assert_eq!(summary.get("added-files-size").map(String::as_str), Some("100"), "{summary:?}");
    let replace = |files: [&str; 2], into: &str, id: i64| {
        let removed = files.iter().map(|f| format!("file:///nowhere/{f}.parquet")).collect();
        let change = Change::Replace {
            removed_data_files: removed,
            removed_delete_files: Default::default(),
            added: vec![in_partition(into, id, DataContentType::Data)],
            spec_id: 0,
            planned_sequence_number: planned,
        };
        PendingCommit::new(change, HashMap::new())
    };
    let other = catalog.commit(table.clone(), &replace(["b1", "b2"], "b", 2), |_| Ok(HashMap::new()), &policy).await;
    let table = other.expect("a delete in partition 1 does not block a rewrite of partition 2").table;
    let same = catalog.commit(table, &replace(["a1", "a2"], "a", 1), |_| Ok(HashMap::new()), &policy).await;
    assert!(matches!(&same, Err(Error::Rejected { reason, .. }) if reason.contains("a-deletes")), "{same:?}");
}

/// A file on local disk under `dir`, as a table would name it, and that name.
fn file_on_disk(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(&path, b"data").expect("write");
    format!("file://{}", path.display())
}

/// Settling judges journals by the table as loaded *after* listing them: a peer that committed
/// and journaled its next checkpoint after our view of the table was loaded keeps its files
/// (judged by the old view its journal would look settled, and its files would be deleted).
#[tokio::test]
async fn settling_judges_a_peers_new_journal_by_the_table_after_listing() {
    use icefall_table::journal::{self, Journal, JournalRange};
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let ident = parse_ident("ns.peers").expect("ident");
    let table = catalog.load_or_create(&ident, &layout()).await.expect("create");
    let policy = RetryPolicy::default();
    let append = || PendingCommit::append(vec![], 0, HashMap::new());
    let table = catalog.commit(table, &append(), with_offsets(0, 100), &policy).await.expect("commit").table;
    let stale = table.clone();
    // The peer commits 100 → 150, then journals its next checkpoint, 150 → 200.
    let table = catalog.commit(table, &append(), with_offsets(0, 150), &policy).await.expect("commit").table;
    let file = file_on_disk(dir.path(), "warehouse/ns/peers/data/peer-000002.parquet");
    let peer = Journal {
        writer_id: "w".into(),
        instance: "peer".into(),
        checkpoint: 2,
        written_at_ms: 0,
        ranges: vec![JournalRange { topic: "t".into(), partition: 0, start: Some(150), end: 200 }],
        files: vec![file.clone()],
    };
    peer.write(catalog.file_io(), table.metadata.location()).await.expect("journal");
    let settled = journal::settle(&catalog, &stale, false).await.expect("settle");
    assert_eq!((settled.journals_pending, settled.journals_settled), (1, 0), "{settled:?}");
    assert_eq!(settled.files_pending, std::slice::from_ref(&file));
    assert!(std::path::Path::new(&file.replace("file://", "")).exists(), "the peer's file is kept");
}

/// A commit given up (fenced) deletes only the files no snapshot references.
#[tokio::test]
async fn a_given_up_commit_deletes_only_files_no_snapshot_references() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = catalog(dir.path()).await;
    let ident = parse_ident("ns.given_up").expect("ident");
    let table = catalog.load_or_create(&ident, &layout()).await.expect("create");
    let (landed, stray) = (
        file_on_disk(dir.path(), "warehouse/ns/given_up/data/landed.parquet"),
        file_on_disk(dir.path(), "warehouse/ns/given_up/data/stray.parquet"),
    );
    let committed = DataFileBuilder::default()
        .content(DataContentType::Data)
        .file_path(landed.clone())
        .file_format(DataFileFormat::Parquet)
        .record_count(1)
        .file_size_in_bytes(4)
        .partition_spec_id(0)
        .build()
        .expect("data file");
    let pending = PendingCommit::append(vec![committed], 0, HashMap::new());
    catalog.commit(table, &pending, |_| Ok(HashMap::new()), &RetryPolicy::default()).await.expect("commit");
    let deleted = catalog.delete_unreferenced(&ident, &[landed.clone(), stray.clone()]).await.expect("delete");
    assert_eq!(deleted, std::slice::from_ref(&stray));
    assert!(std::path::Path::new(&landed.replace("file://", "")).exists());
    assert!(!std::path::Path::new(&stray.replace("file://", "")).exists());
}
