//! An S3-protocol server on 127.0.0.1 (moto's server, from the venv `scripts/setup.sh` makes)
//! behind a TCP proxy the test can cut: while cut, open connections are closed and new ones
//! refused, which is what a storage outage looks like to a client.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::broker::free_port;
use crate::tools_dir;

pub struct S3Server {
    child: Child,
    /// Moto's own port (the bucket is made there).
    server_port: u16,
    proxy: Proxy,
}

impl S3Server {
    /// Starts moto's server and the proxy in front of it.
    pub fn start() -> S3Server {
        Self::start_with_env(&[])
    }

    /// The same server enforcing IAM (keys and their policies) once it has served `requests`
    /// unauthenticated ones (the set-up a test makes first).
    pub fn start_enforcing_iam_after(requests: u32) -> S3Server {
        Self::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", &requests.to_string())])
    }

    fn start_with_env(env: &[(&str, &str)]) -> S3Server {
        let binary = tools_dir().join("venv/bin/moto_server");
        assert!(binary.exists(), "{} is missing: run scripts/setup.sh", binary.display());
        let server_port = free_port();
        let child = Command::new(binary)
            .envs(env.iter().copied())
            .args(["-H", "127.0.0.1", "-p", &server_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        crate::process::wait_for_port(server_port, "moto_server", Duration::from_secs(60));
        S3Server { child, server_port, proxy: Proxy::start(server_port) }
    }

    /// The endpoint clients use (through the proxy).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy.port)
    }

    /// Creates a bucket (moto takes unsigned path-style requests).
    pub fn create_bucket(&self, bucket: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.server_port)).expect("connect to moto");
        write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        assert!(response.starts_with("HTTP/1.1 200"), "create bucket {bucket}: {response}");
    }

    /// Puts an object at `s3://<path>` (bucket first), as a crashed process would leave one.
    pub fn put_object(&self, path: &str, body: &[u8]) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.server_port)).expect("connect to moto");
        write!(
            stream,
            "PUT /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .expect("send");
        stream.write_all(body).expect("send body");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        assert!(response.starts_with("HTTP/1.1 200"), "put {path}: {response}");
    }

    /// Storage outage: every connection is closed and new ones are refused until [`S3Server::restore`].
    pub fn cut(&self) {
        self.proxy.cut.store(true, Ordering::SeqCst);
        for stream in self.proxy.open.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.proxy.cut.store(false, Ordering::SeqCst);
    }

    /// `[catalog]` storage properties for this server.
    pub fn storage_properties(&self) -> String {
        format!(
            "storage = {{ \"s3.endpoint\" = \"{}\", \"s3.region\" = \"us-east-1\", \"s3.path-style-access\" = \"true\", \
             \"s3.access-key-id\" = \"testing\", \"s3.secret-access-key\" = \"testing\" }}",
            self.endpoint()
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let cut = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (cut_flag, open_list) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if cut_flag.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let mut list = open_list.lock().unwrap_or_else(|e| e.into_inner());
                list.retain(|s: &TcpStream| s.peer_addr().is_ok());
                for stream in [&client, &server] {
                    if let Ok(clone) = stream.try_clone() {
                        list.push(clone);
                    }
                }
                drop(list);
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Proxy { port, cut, open }
    }
}

/// Copies `from` → `to` on a thread until either side closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

impl S3Server {
    /// Points a test config's warehouse (`warehouse = "<dir>/warehouse"`) at `s3://<bucket>/warehouse`
    /// on this server.
    pub fn move_warehouse(&self, config: &std::path::Path, dir: &std::path::Path, bucket: &str) {
        let text = std::fs::read_to_string(config).expect("read config");
        let local = format!("warehouse = \"{}/warehouse\"", dir.display());
        assert!(text.contains(&local), "{} has no local warehouse", config.display());
        let moved =
            text.replace(&local, &format!("warehouse = \"s3://{bucket}/warehouse\"\n{}", self.storage_properties()));
        std::fs::write(config, moved).expect("write config");
    }

    /// The catalog config of a test dir's SQLite catalog with its warehouse on this server.
    pub fn catalog_config(&self, dir: &std::path::Path, bucket: &str) -> icefall_table::CatalogConfig {
        icefall_table::CatalogConfig {
            uri: format!("sqlite:{}/catalog.db", dir.display()),
            name: "icefall".into(),
            warehouse: format!("s3://{bucket}/warehouse"),
            storage: [
                ("s3.endpoint", self.endpoint()),
                ("s3.region", "us-east-1".into()),
                ("s3.path-style-access", "true".into()),
                ("s3.access-key-id", "testing".into()),
                ("s3.secret-access-key", "testing".into()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            token: None,
            rest: Default::default(),
        }
    }
}
