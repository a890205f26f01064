//! `icefall-writer` as a child process: started, stopped (SIGTERM), killed (SIGKILL).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::repo_root;

/// The writer binary built by cargo for this workspace.
pub fn writer_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let path = target.join("debug/icefall-writer");
    assert!(path.exists(), "{} is missing: run `cargo build --bins` first", path.display());
    path
}

/// Settings of the test pipeline config.
pub struct PipelineSpec<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub table: &'a str,
    pub checkpoint: &'a str,
    pub writers: usize,
    /// Catalog database; `None` = SQLite in `dir`.
    pub catalog_uri: Option<String>,
}

/// Writes a config for the standard test events (see `produce::event_json`) into `dir`.
pub fn events_pipeline(dir: &Path, spec: &PipelineSpec<'_>) -> PathBuf {
    events_pipelines(dir, spec, &[("events", spec.topic, spec.table)])
}

/// The same with one pipeline per `(name, topic, table)`, all in one process (`spec.topic` and
/// `spec.table` are not used).
pub fn events_pipelines(dir: &Path, spec: &PipelineSpec<'_>, pipelines: &[(&str, &str, &str)]) -> PathBuf {
    let mut config = format!(
        r#"writer_id = "test-writer"

[catalog]
uri = "{catalog_uri}"
name = "icefall"
warehouse = "{dir}/warehouse"

[kafka]
brokers = "{bootstrap}"
group_id = "it"
properties = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500", "topic.metadata.refresh.interval.ms" = "1000", "max.poll.interval.ms" = "15000" }}
"#,
        dir = dir.display(),
        catalog_uri = spec.catalog_uri.clone().unwrap_or_else(|| format!("sqlite:{}/catalog.db", dir.display())),
        bootstrap = spec.bootstrap,
    );
    for (name, topic, table) in pipelines {
        config.push_str(&format!(
            r#"
[[pipelines]]
name = "{name}"
topics = ["{topic}"]
table = "{table}"
checkpoint_interval = "{checkpoint}"
writers = {writers}
event_time_column = "ts"
partition = ["day(ts)", "bucket(4, id)"]
schema = [
  {{ name = "id", type = "long", required = true }},
  {{ name = "ts", type = "timestamptz", required = true }},
  {{ name = "user", type = "string" }},
  {{ name = "amount", type = "decimal(12, 2)" }},
  {{ name = "tags", type = "list<string>" }},
  {{ name = "geo", type = "struct<lat: double, lon: double>" }},
]

[pipelines.metadata_columns]
topic = "kafka_topic"
partition = "kafka_partition"
offset = "kafka_offset"
timestamp = "kafka_timestamp"
key = "kafka_key"
headers = "kafka_headers"
ingested_at = "ingested_at"
"#,
            checkpoint = spec.checkpoint,
            writers = spec.writers,
        ));
    }
    let path = dir.join("writer.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// Writes a one-pipeline config whose format-specific part is `pipeline_extra` (keys of the
/// `[[pipelines]]` table, then any sub-tables) and `top_extra` (top-level tables such as
/// `[schema_registry]`), with the Kafka metadata columns `kafka_partition` / `kafka_offset`.
pub fn format_pipeline(
    dir: &Path,
    bootstrap: &str,
    topic: &str,
    table: &str,
    pipeline_extra: &str,
    top_extra: &str,
) -> PathBuf {
    let keys =
        format!("name = \"formats\"\ntopics = [\"{topic}\"]\ntable = \"{table}\"\nwriters = 2\n{pipeline_extra}");
    pipeline_config(dir, bootstrap, &keys, top_extra, "")
}

/// Writes a one-pipeline config over a SQLite catalog in `dir`: the pipeline's `keys` (name,
/// topics, table, …, then any sub-tables), `top_extra` top-level tables, and the metadata
/// columns `kafka_partition` / `kafka_offset` plus `metadata_extra`; checkpoints every 500 ms.
pub fn pipeline_config(dir: &Path, bootstrap: &str, keys: &str, top_extra: &str, metadata_extra: &str) -> PathBuf {
    let config = format!(
        r#"writer_id = "test-writer"

[catalog]
uri = "sqlite:{dir}/catalog.db"
name = "icefall"
warehouse = "{dir}/warehouse"

[kafka]
brokers = "{bootstrap}"
group_id = "it"
properties = {{ "session.timeout.ms" = "6000", "heartbeat.interval.ms" = "500", "topic.metadata.refresh.interval.ms" = "1000", "max.poll.interval.ms" = "15000" }}

{top_extra}

[[pipelines]]
checkpoint_interval = "500ms"
{keys}

[pipelines.metadata_columns]
partition = "kafka_partition"
offset = "kafka_offset"
{metadata_extra}
"#,
        dir = dir.display(),
    );
    let path = dir.join("writer.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

pub struct WriterProcess {
    child: Child,
    pub log: PathBuf,
}

impl WriterProcess {
    pub fn start(config: &Path, log_name: &str) -> WriterProcess {
        let mut command = Command::new(writer_binary());
        command.env("ICEFALL_LOG", "info,icefall_writer=debug");
        Self::spawn(command, config, log_name)
    }

    /// Starts the writer with extra environment, e.g. a test build's fault injection
    /// (`ICEFALL_TEST_CRASH_AT`, `ICEFALL_TEST_DISABLE`; see `icefall_table::fault`).
    pub fn start_with_env(config: &Path, log_name: &str, env: &[(&str, &str)]) -> WriterProcess {
        let mut command = Command::new(writer_binary());
        command.env("ICEFALL_LOG", "info,icefall_writer=debug").envs(env.iter().copied());
        Self::spawn(command, config, log_name)
    }

    /// Starts `binary` on the CPUs in `cpus` (a `taskset -c` list), logging JSON lines at info level.
    pub fn start_pinned(binary: &Path, cpus: &str, config: &Path, log_name: &str) -> WriterProcess {
        let mut command = Command::new("taskset");
        command.args(["-c", cpus]).arg(binary).env("ICEFALL_LOG", "info").env("ICEFALL_LOG_JSON", "true");
        Self::spawn(command, config, log_name)
    }

    fn spawn(mut command: Command, config: &Path, log_name: &str) -> WriterProcess {
        let log = config.parent().unwrap_or(Path::new(".")).join(format!("{log_name}.log"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("writer log");
        let child = command
            .args(["run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start icefall-writer");
        WriterProcess { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGSTOP: the process freezes mid-flight (a zombie: long GC pause, VM migration).
    pub fn freeze(&self) {
        signal(self.child.id(), "-STOP");
    }

    /// SIGCONT: the frozen process goes on where it stopped.
    pub fn thaw(&self) {
        signal(self.child.id(), "-CONT");
    }

    /// SIGKILL: no final checkpoint, no cleanup.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self, timeout: Duration) -> ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                if !status.success() {
                    // The caller asserts on the status; the reason is in the log's last lines.
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(30).collect();
                    eprintln!("--- {} exited {status}; last lines ---", self.log.display());
                    tail.iter().rev().for_each(|line| eprintln!("{line}"));
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the writer did not stop within {timeout:?}; log: {}", self.log.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the writer's log contains `text` (e.g. `"partitions assigned"`).
    pub fn wait_for_log(&self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(text)) {
            assert!(Instant::now() < deadline, "the writer never logged {text:?}; log: {}", self.log.display());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the log (which runs of the same name share) holds `text` at least `count` times.
    pub fn wait_for_log_count(&self, text: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while std::fs::read_to_string(&self.log).map_or(0, |log| log.matches(text).count()) < count {
            assert!(
                Instant::now() < deadline,
                "the writer never logged {text:?} {count} times; log: {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the writer to exit on its own (no signal sent).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the writer did not exit within {timeout:?}; log: {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for WriterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test's temp dir (and this log) is about to go: show what the writer said.
        if std::thread::panicking() {
            print_log_tail(&self.log);
        }
    }
}

/// The writer's warnings and errors plus its last lines, on stderr (captured into the test's output).
fn print_log_tail(log: &Path) {
    let Ok(text) = std::fs::read_to_string(log) else { return };
    let lines: Vec<&str> = text.lines().collect();
    let problems: Vec<&str> = lines.iter().copied().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
    eprintln!("--- {}: last warnings/errors ---", log.display());
    for line in &problems[problems.len().saturating_sub(20)..] {
        eprintln!("{line}");
    }
    eprintln!("--- {}: last lines ---", log.display());
    for line in &lines[lines.len().saturating_sub(40)..] {
        eprintln!("{line}");
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}
