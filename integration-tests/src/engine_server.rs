//! Long-lived `engines.py --serve` processes, so the suite starts a Spark JVM once per test
//! thread instead of once per reading (each start costs 10–20 s of a 2-core machine).
//!
//! A caller takes an idle server or starts one, sends one request (the script's arguments as a
//! JSON array on one line) and puts the server back after the answer. Servers never outlive the
//! test binary: when it exits their stdin closes and they stop (with their JVMs).

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, PoisonError};

use crate::{repo_root, tools_dir};

static IDLE: Mutex<Vec<EngineServer>> = Mutex::new(Vec::new());

struct EngineServer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The server's stderr (Spark's log), shown when it fails.
    log: PathBuf,
}

/// Runs `engines.py` with `args` in a server; returns its report. Panics with the script's
/// traceback (Spark's error included) if the request fails.
pub fn run_engines(args: &[String]) -> serde_json::Value {
    let idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner).pop();
    let mut server = idle.unwrap_or_else(EngineServer::start);
    let answer = server.ask(args);
    let log = server.log.clone();
    // A server that answered (even with an error) is healthy: the next caller may use it.
    if answer.is_some() {
        IDLE.lock().unwrap_or_else(PoisonError::into_inner).push(server);
    }
    let Some(mut answer) = answer else {
        panic!("engines.py --serve died; the end of its log ({}):\n{}", log.display(), log_tail(&log));
    };
    if let Some(error) = answer.get("error") {
        panic!("engines.py failed for {args:?}:\n{}", error.as_str().unwrap_or_default());
    }
    answer["report"].take()
}

impl EngineServer {
    fn start() -> EngineServer {
        let log =
            std::env::temp_dir().join(format!("icefall-engines-{}-{}.log", std::process::id(), crate::unique("s")));
        let log_file = std::fs::File::create(&log).expect("engines server log");
        let mut child = Command::new(tools_dir().join("venv/bin/python"))
            .arg(repo_root().join("integration-tests/python/engines.py"))
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start engines.py --serve");
        let stdin = child.stdin.take().expect("server stdin");
        let stdout = BufReader::new(child.stdout.take().expect("server stdout"));
        EngineServer { child, stdin, stdout, log }
    }

    /// The server's answer, or `None` if it died.
    fn ask(&mut self, args: &[String]) -> Option<serde_json::Value> {
        let request = serde_json::to_string(args).expect("request");
        writeln!(self.stdin, "{request}").and_then(|()| self.stdin.flush()).ok()?;
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                None
            }
            Ok(_) => Some(
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("engines.py answered no JSON ({e}): {line}")),
            ),
        }
    }
}

/// The last 8 KiB of a log file.
fn log_tail(path: &PathBuf) -> String {
    let Ok(mut file) = std::fs::File::open(path) else { return String::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut tail = Vec::new();
    let _ = file.read_to_end(&mut tail);
    String::from_utf8_lossy(&tail).into_owned()
}
