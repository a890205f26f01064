//! Certificates made with the `openssl` command for a test run (a CA, a server certificate for
//! 127.0.0.1, a client certificate), and a schema registry behind mutual TLS and OAuth2
//! (`python/tls_registry.py`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::broker::free_port;
use crate::{repo_root, tools_dir};

/// PEM files under one folder.
pub struct Certificates {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Certificates {
    /// A CA and two certificates it signed: the server's (for IP 127.0.0.1) and a client's.
    pub fn make(dir: &Path) -> Certificates {
        std::fs::create_dir_all(dir).expect("certificate folder");
        let ca = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2"];
        openssl(dir, &[&ca[..], &["-subj", "/CN=icefall test CA"]].concat());
        std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext file");
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext file");
        for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/CN=icefall-writer")] {
            let (key, csr, pem, ext) =
                (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
            openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject]);
            let sign =
                ["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &pem];
            openssl(dir, &[&sign[..], &["-days", "2", "-extfile", &ext]].concat());
        }
        Certificates {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

/// The schema registry behind mutual TLS and OAuth2.
pub struct TlsRegistry {
    child: Child,
    pub port: u16,
}

impl TlsRegistry {
    /// Asks for client certificates signed by `certs.ca` and OAuth2 client credentials `client`
    /// (`id:secret`).
    pub fn start(certs: &Certificates, client: &str, log: &Path) -> TlsRegistry {
        let port = free_port();
        let log = std::fs::File::create(log).expect("server log");
        let child = Command::new(tools_dir().join("venv/bin/python"))
            .arg(repo_root().join("integration-tests/python/tls_registry.py"))
            .args(["--port", &port.to_string(), "--client", client])
            .arg("--cert")
            .arg(&certs.server_cert)
            .arg("--key")
            .arg(&certs.server_key)
            .arg("--ca")
            .arg(&certs.ca)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the TLS schema registry");
        crate::process::wait_for_port(port, "the TLS schema registry", Duration::from_secs(30));
        TlsRegistry { child, port }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
