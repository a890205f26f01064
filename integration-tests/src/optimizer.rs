//! `icefall-optimizer` as a child process, on a test's catalog.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::repo_root;

pub fn optimizer_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let path = target.join("debug/icefall-optimizer");
    assert!(path.exists(), "{} is missing: run `cargo build --bins` first", path.display());
    path
}

/// Writes an optimizer config for the catalog in `dir` (SQLite, as the writer's test config).
pub fn config(dir: &Path, catalog_uri: Option<&str>) -> PathBuf {
    let uri = catalog_uri.map(str::to_string).unwrap_or_else(|| format!("sqlite:{}/catalog.db", dir.display()));
    let text = format!(
        "[catalog]\nuri = \"{uri}\"\nname = \"icefall\"\nwarehouse = \"{}/warehouse\"\n\n[compact]\nmin_input_files = 2\n",
        dir.display()
    );
    let path = dir.join("optimizer.toml");
    std::fs::write(&path, text).expect("write optimizer config");
    path
}

fn command(config: &Path, table: &str, args: &[&str]) -> Command {
    let mut command = Command::new(optimizer_binary());
    command.arg("--config").arg(config).args(["--table", table, "--json"]).args(args);
    command
}

/// Runs a command to completion; panics with its output if it fails.
pub fn run(config: &Path, table: &str, args: &[&str]) -> Vec<serde_json::Value> {
    run_with_env(config, table, args, &[])
}

/// The same with extra environment variables (e.g. storage credentials).
pub fn run_with_env(config: &Path, table: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let output: Output =
        command(config, table, args).envs(env.iter().copied()).output().expect("run icefall-optimizer");
    assert!(
        output.status.success(),
        "icefall-optimizer {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON report")).collect()
}

/// Runs a command that is expected to fail (exit non-zero); returns its reports.
pub fn run_failing(config: &Path, table: &str, args: &[&str], env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let output: Output =
        command(config, table, args).envs(env.iter().copied()).output().expect("run icefall-optimizer");
    assert!(!output.status.success(), "icefall-optimizer {args:?} was expected to fail");
    String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Starts a command without waiting (to kill it mid-way).
pub fn spawn(config: &Path, table: &str, args: &[&str]) -> Child {
    command(config, table, args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start icefall-optimizer")
}

/// A table `name` (one `id` column, unpartitioned, `properties`) in the SQLite catalog in
/// `dir`, with `commits` snapshots, each adding one file of `rows` ids (no file when 0).
pub async fn table_with_commits(dir: &Path, name: &str, properties: &[(&str, &str)], commits: usize, rows: i64) {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
    use icefall_table::catalog::parse_ident;
    use icefall_table::files::TableFiles;
    use icefall_table::{PendingCommit, RetryPolicy, create::TableLayout};

    let catalog = crate::tables::catalog(dir).await;
    let schema = Schema::builder()
        .with_fields(vec![NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into()])
        .build()
        .expect("schema");
    let properties = properties.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let layout = TableLayout { schema, partition: vec![], properties, sort_order: vec![] };
    let mut table = catalog.load_or_create(&parse_ident(name).expect("ident"), &layout).await.expect("create");
    for commit in 0..commits as i64 {
        let files =
            TableFiles::new(table.name(), table.metadata.clone(), catalog.file_io().clone(), None).expect("files");
        let mut data = Vec::new();
        if rows > 0 {
            let arrow =
                Arc::new(iceberg::arrow::schema_to_arrow_schema(table.metadata.current_schema()).expect("arrow"));
            let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(commit * rows..(commit + 1) * rows));
            let mut writer = files.open(format!("small-{commit}")).expect("open");
            writer.write(RecordBatch::try_new(arrow, vec![ids]).expect("batch")).await.expect("write");
            data = writer.close().await.expect("close");
        }
        let pending = PendingCommit::append(data, files.spec_id(), Default::default());
        table = catalog
            .commit(table, &pending, |_| Ok(Default::default()), &RetryPolicy::default())
            .await
            .expect("commit")
            .table;
    }
}
