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
        Self::start_with(dir, &[])
    }

    /// The same server asking OAuth2 client credentials `client` (`id:secret`) for tokens valid
    /// `lifetime`.
    pub fn start_with_oauth(dir: &Path, client: &str, lifetime: Duration) -> RestCatalogServer {
        let lifetime = lifetime.as_secs().to_string();
        Self::start_with(dir, &["--oauth-client", client, "--token-lifetime", &lifetime])
    }

    /// The same server asking every request to be SigV4-signed within `scope`
    /// (`key:secret:region:service`), checked by botocore's signer.
    pub fn start_with_sigv4(dir: &Path, scope: &str) -> RestCatalogServer {
        Self::start_with(dir, &["--sigv4", scope])
    }

    /// The same server keeping tables on the S3 server at `endpoint` (moto enforcing IAM after
    /// the four requests the server's set-up makes), vending per-table keys to clients that ask.
    pub fn start_vending_s3(dir: &Path, endpoint: &str) -> RestCatalogServer {
        Self::start_with(dir, &["--vend-s3", endpoint])
    }

    /// The server's own SQLite catalog, read directly (when its REST side asks for credentials
    /// the test process does not hold).
    pub fn sqlite_uri(dir: &Path) -> String {
        format!("sqlite:{}/rest-catalog.db", dir.display())
    }

    fn start_with(dir: &Path, options: &[&str]) -> RestCatalogServer {
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
            .args(options)
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

    /// Every token issued so far stops working (`expire-tokens`), or the client credential is
    /// refused from now on too (`revoke`).
    pub fn tokens(&self, action: &str) {
        let answer = crate::http::request(self.port, "POST", &format!("/test/{action}"), None);
        assert_eq!(answer.map(|(status, _)| status), Some(204), "{action}");
    }

    /// Commits applied, commits refused with 409, faults served, tokens issued and requests
    /// refused for want of a valid token, so far.
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
