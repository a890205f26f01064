//! A private PostgreSQL server on 127.0.0.1 for the PostgreSQL catalog (Debian's server
//! binaries; as root the server runs as the `postgres` user, which PostgreSQL requires).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::broker::free_port;

pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn run(bin: &Path, tool: &str, args: &[&str]) {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    let output = command.args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(output.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&output.stderr));
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries in /usr/lib/postgresql: run scripts/setup.sh")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("an initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            let status = Command::new("chown").args(["-R", "postgres:"]).arg(dir.path()).status().expect("chown");
            assert!(status.success());
        }
        let data = dir.path().join("data");
        let port = free_port();
        let data_text = data.to_string_lossy().to_string();
        run(&bin, "initdb", &["-D", &data_text, "-A", "trust", "-U", "icefall", "-E", "UTF8", "--no-sync"]);
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            dir.path().display()
        );
        let log = dir.path().join("server.log").to_string_lossy().to_string();
        run(&bin, "pg_ctl", &["-D", &data_text, "-o", &options, "-l", &log, "-w", "start"]);
        run(&bin, "createdb", &["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "icefall", "icefall"]);
        Postgres { port, bin, data, _dir: dir }
    }

    /// Stops the server (fast shutdown): the catalog is down until [`Postgres::resume`].
    pub fn pause(&self) {
        let data = self.data.to_string_lossy().to_string();
        run(&self.bin, "pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    pub fn resume(&self) {
        let data = self.data.to_string_lossy().to_string();
        let dir = self.data.parent().unwrap_or(&self.data).to_path_buf();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            self.port,
            dir.display()
        );
        let log = dir.join("server.log").to_string_lossy().to_string();
        run(&self.bin, "pg_ctl", &["-D", &data, "-o", &options, "-l", &log, "-w", "start"]);
    }

    pub fn url(&self) -> String {
        format!("postgres://icefall@127.0.0.1:{}/icefall", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.to_string_lossy().to_string();
        run(&self.bin, "pg_ctl", &["-D", &data, "-m", "immediate", "stop"]);
    }
}
