//! A REST catalog server for the tests (`python/rest_catalog.py`: the Iceberg REST protocol in
//! front of PyIceberg's SqlCatalog), with commit faults on request.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::broker::free_port;
use crate::{repo_root, tools_dir};

pub struct RestCatalogServer {
    child: Child,
    pub port: u16,
}

impl RestCatalogServer {
    /// Serves a catalog kept in `dir/rest-catalog.db`, tables under `dir/rest-warehouse`.
    pub fn start(dir: &Path) -> RestCatalogServer {
        let port = free_port();
        let warehouse = dir.join("rest-warehouse");
        std::fs::create_dir_all(&warehouse).expect("warehouse dir");
        let log = std::fs::File::create(dir.join("rest-catalog.log")).expect("server log");
        let child = Command::new(tools_dir().join("venv/bin/python"))
            .arg(repo_root().join("integration-tests/python/rest_catalog.py"))
            .args(["--port", &port.to_string()])
            .arg("--catalog-db")
            .arg(dir.join("rest-catalog.db"))
            .arg("--warehouse")
            .arg(&warehouse)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the REST catalog server");
        crate::process::wait_for_port(port, "the REST catalog server", Duration::from_secs(60));
        RestCatalogServer { child, port }
    }

    pub fn uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes the next commits fail: `after-500` (applied, then 500) or `before-503` (not applied).
    pub fn fail_next_commits(&self, faults: &[&str]) {
        let body = serde_json::json!({ "commits": faults }).to_string();
        let answer = crate::http::request(self.port, "POST", "/test/faults", Some(&body));
        assert_eq!(answer.map(|(status, _)| status), Some(204), "inject faults");
    }

    /// Commits applied, commits refused with 409, and faults served so far.
    pub fn stats(&self) -> serde_json::Value {
        let (_, body) = crate::http::get(self.port, "/test/stats").expect("server stats");
        serde_json::from_str(&body).expect("stats JSON")
    }
}

impl Drop for RestCatalogServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
