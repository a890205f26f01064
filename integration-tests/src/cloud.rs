//! Cloud object stores on 127.0.0.1 for the storage tests: Google Cloud Storage as
//! `gcp-storage-emulator` serves it (JSON API, from the venv) and Azure Blob Storage as Azurite
//! serves it (npm, on the machine's Node.js), both installed by `scripts/setup.sh`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::broker::free_port;
use crate::tools_dir;

/// Azurite's well-known development account (the emulator only accepts this one).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Its key, as published with Azurite.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Which store an [`ObjectStore`] emulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gcs,
    Azure,
}

/// An emulator process with one bucket (container) named `lake`.
pub struct ObjectStore {
    child: Child,
    port: u16,
    pub kind: Kind,
}

impl ObjectStore {
    /// Starts the emulator and makes the `lake` bucket.
    pub fn start(kind: Kind) -> ObjectStore {
        let port = free_port();
        let mut command = match kind {
            Kind::Gcs => {
                let binary = tools_dir().join("venv/bin/gcp-storage-emulator");
                assert!(binary.exists(), "{} is missing: run scripts/setup.sh", binary.display());
                let mut c = Command::new(binary);
                c.args(["start", "--host", "127.0.0.1", "--port", &port.to_string(), "--in-memory"]);
                c.args(["--default-bucket", "lake"]);
                c
            }
            Kind::Azure => {
                let binary = tools_dir().join("azurite/node_modules/.bin/azurite-blob");
                assert!(binary.exists(), "{} is missing: run scripts/setup.sh", binary.display());
                let mut c = Command::new(binary);
                c.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--inMemoryPersistence"]);
                c.args(["--skipApiVersionCheck", "--loose", "--disableTelemetry"]);
                c
            }
        };
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start the storage emulator");
        crate::process::wait_for_port(port, &format!("{kind:?} emulator"), Duration::from_secs(60));
        let store = ObjectStore { child, port, kind };
        if kind == Kind::Azure {
            store.python(&["mkdir", "lake"], b"");
        }
        store
    }

    /// Where the warehouse goes.
    pub fn warehouse(&self) -> String {
        match self.kind {
            Kind::Gcs => "gs://lake/warehouse".into(),
            Kind::Azure => format!("abfs://lake@{AZURITE_ACCOUNT}.dfs.core.windows.net/warehouse"),
        }
    }

    /// Storage properties, under the names both we and PyIceberg read.
    pub fn properties(&self) -> Vec<(String, String)> {
        let pairs: Vec<(&str, String)> = match self.kind {
            // The emulator takes any token; sending one keeps every client off the metadata server.
            Kind::Gcs => vec![
                ("gcs.service.host", format!("http://127.0.0.1:{}", self.port)),
                ("gcs.oauth2.token", "emulator".into()),
                ("gcs.oauth2.token-expires-at", "4102444800000".into()),
            ],
            // A connection string, as Azurite's users write one: it names the Blob endpoint.
            Kind::Azure => vec![(
                "adls.connection-string",
                format!(
                    "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};\
                     BlobEndpoint=http://127.0.0.1:{}/{AZURITE_ACCOUNT};",
                    self.port
                ),
            )],
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The `storage = { … }` line of a `[catalog]` section.
    pub fn storage_line(&self) -> String {
        let pairs: Vec<String> = self.properties().iter().map(|(k, v)| format!("\"{k}\" = \"{v}\"")).collect();
        format!("storage = {{ {} }}", pairs.join(", "))
    }

    /// Puts an object at `key` in the bucket, as a crashed process would leave one.
    pub fn put_object(&self, key: &str, body: &[u8]) {
        self.python(&["put", key], body);
    }

    /// Object keys under `prefix`.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let out = self.python(&["list", prefix], b"");
        String::from_utf8_lossy(&out).lines().map(str::to_string).collect()
    }

    /// Runs `integration-tests/python/object_store.py` against this store (the clients PyIceberg
    /// reads with, pyarrow's for GCS and adlfs for Azure: independent of ours).
    fn python(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = Command::new(tools_dir().join("venv/bin/python"))
            .arg(crate::repo_root().join("integration-tests/python/object_store.py"))
            .args(["--kind", if self.kind == Kind::Gcs { "gcs" } else { "azure" }])
            .args(self.properties().iter().flat_map(|(k, v)| ["--property".to_string(), format!("{k}={v}")]))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run object_store.py");
        child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
        let out = child.wait_with_output().expect("object_store.py");
        assert!(out.status.success(), "object_store.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }
}

impl Drop for ObjectStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
