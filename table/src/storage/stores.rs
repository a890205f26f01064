//! From a path and the Iceberg storage properties to an opendal operator: the one place that
//! reads `s3.*`, `gcs.*` and `adls.*`. Data files, manifests, deletes and the optimizer's listing
//! all get their operators here, so they agree on endpoints and credentials.

use std::collections::BTreeMap;
use std::time::Duration;

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{Operator, services};

/// Where a path lives: which store, which bucket (container), and the key inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Which store, and its bucket or container.
    pub store: Store,
    /// `s3://bucket`, `gs://bucket`, `abfss://container@account.dfs.core.windows.net`, or empty
    /// for local files: the part of every path the operator's keys are relative to.
    pub base: String,
    /// The key within the bucket, without a leading slash (local files: the absolute path
    /// without its leading slash).
    pub key: String,
}

/// The stores we write to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Store {
    /// Local files (`file:` or an absolute path).
    Local,
    /// `s3://bucket/…` (also `s3a://`, `s3n://`).
    S3 { bucket: String },
    /// `gs://bucket/…`.
    Gcs { bucket: String },
    /// ADLS Gen2 (`abfs[s]://`, the `dfs` host) and Blob Storage (`wasb[s]://`, the `blob` host)
    /// alike: both accounts serve the Blob API, which is what we (and Azurite) speak.
    Azure { container: String, account: String, endpoint: String },
}

/// Parses a path or location into its store, bucket and key.
pub fn target(path: &str) -> Result<Target, String> {
    if let Some(rest) = path.strip_prefix("file:") {
        return Ok(local(rest));
    }
    if path.starts_with('/') {
        return Ok(local(path));
    }
    let (scheme, rest) =
        path.split_once("://").ok_or_else(|| format!("{path}: a path needs a scheme or to be absolute"))?;
    let (authority, key) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(format!("{path}: no bucket"));
    }
    let key = key.trim_start_matches('/').to_string();
    let store = match scheme {
        "s3" | "s3a" | "s3n" => Store::S3 { bucket: authority.to_string() },
        "gs" | "gcs" => Store::Gcs { bucket: authority.to_string() },
        "abfs" | "abfss" | "wasb" | "wasbs" => azure(scheme, authority).map_err(|e| format!("{path}: {e}"))?,
        other => {
            return Err(format!("{path}: unsupported scheme {other}:// (local paths, s3, gs, abfss and wasbs are)"));
        }
    };
    // One spelling per store: s3a/s3n are s3, gcs is gs.
    let canonical = match &store {
        Store::S3 { .. } => "s3",
        Store::Gcs { .. } => "gs",
        _ => scheme,
    };
    Ok(Target { store, base: format!("{canonical}://{authority}"), key })
}

fn local(rest: &str) -> Target {
    Target { store: Store::Local, base: String::new(), key: rest.trim_start_matches('/').to_string() }
}

/// `container@account.dfs.core.windows.net` → the container, the account and its Blob endpoint.
fn azure(scheme: &str, authority: &str) -> Result<Store, String> {
    let (container, host) =
        authority.split_once('@').ok_or("Azure paths are <scheme>://<container>@<account>.dfs.<suffix>/<path>")?;
    let (account, service_and_suffix) = host.split_once('.').ok_or("no account name in the host")?;
    let (service, suffix) = service_and_suffix.split_once('.').ok_or("no storage service in the host")?;
    if !["dfs", "blob"].contains(&service) || container.is_empty() || account.is_empty() {
        return Err(format!("host {host} is not <account>.dfs.<suffix> or <account>.blob.<suffix>"));
    }
    let http = if matches!(scheme, "abfss" | "wasbs") { "https" } else { "http" };
    Ok(Store::Azure {
        container: container.to_string(),
        account: account.to_string(),
        endpoint: format!("{http}://{account}.blob.{suffix}"),
    })
}

/// Storage properties: the catalog's, with a table's vended credentials over them.
pub type Properties = BTreeMap<String, String>;

/// An operator for `target`'s bucket rooted at `root` (a key prefix, `""` for the bucket), with
/// the same per-request timeout and retries for every store.
pub fn operator(target: &Target, root: &str, props: &Properties) -> Result<Operator, String> {
    // The HTTP client the cloud services send with (installed once per process; first wins).
    opendal::install_default();
    let root = format!("/{}", root.trim_matches('/'));
    let get = |key: &str| props.get(key).map(String::as_str);
    let truthy = |key: &str| get(key).is_some_and(|v| ["true", "1", "yes"].contains(&v.to_ascii_lowercase().as_str()));
    let built = match &target.store {
        Store::Local => Operator::new(services::Fs::default().root(&root)),
        Store::S3 { bucket } => {
            let mut b = services::S3::default().bucket(bucket).root(&root);
            if let Some(v) = get("s3.endpoint") {
                b = b.endpoint(v);
            }
            if let Some(v) = get("client.region").or(get("s3.region")) {
                b = b.region(v);
            }
            if let Some(v) = get("s3.access-key-id") {
                b = b.access_key_id(v);
            }
            if let Some(v) = get("s3.secret-access-key") {
                b = b.secret_access_key(v);
            }
            if let Some(v) = get("s3.session-token") {
                b = b.session_token(v);
            }
            if let Some(v) = get("s3.assume-role.arn") {
                b = b.role_arn(v);
            }
            if let Some(v) = get("s3.assume-role.external-id") {
                b = b.external_id(v);
            }
            if let Some(v) = get("s3.assume-role.session-name") {
                b = b.role_session_name(v);
            }
            b = match get("s3.sse.type").map(str::to_ascii_lowercase).as_deref() {
                None | Some("none") => b,
                Some("s3") => b.server_side_encryption_with_s3_key(),
                Some("kms") => match get("s3.sse.key") {
                    Some(key) => b.server_side_encryption_with_customer_managed_kms_key(key),
                    None => b.server_side_encryption_with_aws_managed_kms_key(),
                },
                Some(other) => return Err(format!("s3.sse.type = {other:?}: expected none, s3 or kms")),
            };
            // Iceberg's default is virtual-host addressing; path style only when asked for.
            if !truthy("s3.path-style-access") {
                b = b.enable_virtual_host_style();
            }
            if truthy("s3.allow-anonymous") {
                b = b.skip_signature();
            }
            if truthy("s3.disable-ec2-metadata") {
                b = b.disable_ec2_metadata();
            }
            Operator::new(b)
        }
        Store::Gcs { bucket } => {
            let mut b = services::Gcs::default().bucket(bucket).root(&root);
            // Java and PyIceberg say `gcs.service.host`, iceberg-rust `gcs.service.path`.
            if let Some(v) = get("gcs.service.host").or(get("gcs.service.path")) {
                b = b.endpoint(v);
            }
            if let Some(v) = get("gcs.oauth2.token") {
                b = b.token(v.to_string());
            }
            if let Some(v) = get("gcs.credentials-json") {
                b = b.credential(v);
            }
            if truthy("gcs.no-auth") {
                b = b.skip_signature().disable_vm_metadata().disable_config_load();
            }
            Operator::new(b)
        }
        Store::Azure { container, account, endpoint } => {
            // Java names per-account keys `adls.<key>.<account>`; PyIceberg the plain ones.
            let per_account = |key: &str| get(&format!("{key}.{account}")).or(get(key));
            for unsupported in ["adls.tenant-id", "adls.client-id", "adls.client-secret"] {
                if get(unsupported).is_some() {
                    return Err(format!(
                        "{unsupported}: service principals come from the environment (AZURE_TENANT_ID, \
                         AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or AZURE_FEDERATED_TOKEN_FILE), not from properties"
                    ));
                }
            }
            let mut b = match per_account("adls.connection-string") {
                Some(conn) => services::Azblob::from_connection_string(conn)
                    .map_err(|e| format!("adls.connection-string: {e}"))?,
                None => {
                    services::Azblob::default().endpoint(&blob_endpoint(endpoint, account, get)).account_name(account)
                }
            };
            b = b.container(container).root(&root);
            if let Some(v) = per_account("adls.account-key") {
                b = b.account_key(v);
            }
            if let Some(v) = per_account("adls.sas-token") {
                b = b.sas_token(v.trim_start_matches('?'));
            }
            Operator::new(b)
        }
    };
    let op = built.map_err(|e| format!("configure {}: {e}", describe(target)))?;
    // The timeout is per attempt, inside the retries: a dropped connection fails one attempt
    // instead of hanging the operation.
    Ok(op.layer(TimeoutLayer::new().with_io_timeout(Duration::from_secs(60))).layer(RetryLayer::new()))
}

/// The Blob endpoint: the path's own host, unless PyIceberg's `adls.blob-storage-authority`
/// (and `-scheme`) names another, as for an emulator, which takes the account in the path.
fn blob_endpoint<'a>(from_path: &str, account: &str, get: impl Fn(&str) -> Option<&'a str>) -> String {
    let Some(authority) = get("adls.blob-storage-authority") else { return from_path.to_string() };
    let scheme = get("adls.blob-storage-scheme").unwrap_or("https");
    let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
    if host == "localhost" || host.parse::<std::net::IpAddr>().is_ok() {
        format!("{scheme}://{authority}/{account}")
    } else {
        format!("{scheme}://{account}.{authority}")
    }
}

fn describe(target: &Target) -> String {
    match &target.store {
        Store::Local => "local file access".into(),
        _ => format!("access to {}", target.base),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_spells_its_paths_one_way() {
        let t = target("s3a://lake/w/t/data/a.parquet").expect("s3a");
        assert_eq!((t.base.as_str(), t.key.as_str()), ("s3://lake", "w/t/data/a.parquet"));
        let t = target("gs://lake/w/a.parquet").expect("gs");
        assert_eq!((t.store, t.base.as_str()), (Store::Gcs { bucket: "lake".into() }, "gs://lake"));
        let t = target("abfss://data@acct.dfs.core.windows.net/w/a.parquet").expect("abfss");
        assert_eq!(t.base, "abfss://data@acct.dfs.core.windows.net");
        assert_eq!(
            t.store,
            Store::Azure {
                container: "data".into(),
                account: "acct".into(),
                endpoint: "https://acct.blob.core.windows.net".into()
            }
        );
        assert_eq!(t.key, "w/a.parquet");
        let t = target("file:///w/a.parquet").expect("file");
        assert_eq!((t.store, t.base.as_str(), t.key.as_str()), (Store::Local, "", "w/a.parquet"));
        assert!(target("abfss://acct.dfs.core.windows.net/w").is_err(), "no container");
        assert!(target("hdfs://nn/w").expect_err("hdfs").contains("unsupported scheme"));
    }

    #[test]
    fn a_bad_setting_names_its_key() {
        let t = target("s3://lake/w").expect("s3");
        let props: Properties = [("s3.sse.type".to_string(), "rot13".to_string())].into();
        assert!(operator(&t, "", &props).expect_err("bad sse").contains("s3.sse.type"));
        let t = target("abfss://c@a.dfs.core.windows.net/w").expect("abfss");
        let props: Properties = [("adls.client-secret".to_string(), "x".to_string())].into();
        assert!(operator(&t, "", &props).expect_err("secret").contains("AZURE_CLIENT_SECRET"));
    }

    #[test]
    fn an_emulator_takes_the_account_in_the_path() {
        let props: Properties = [
            ("adls.blob-storage-authority".to_string(), "127.0.0.1:10000".to_string()),
            ("adls.blob-storage-scheme".to_string(), "http".to_string()),
        ]
        .into();
        let get = |k: &str| props.get(k).map(String::as_str);
        assert_eq!(blob_endpoint("https://a.blob.core.windows.net", "a", get), "http://127.0.0.1:10000/a");
        let props: Properties =
            [("adls.blob-storage-authority".to_string(), "blob.core.chinacloudapi.cn".to_string())].into();
        let get = |k: &str| props.get(k).map(String::as_str);
        assert_eq!(blob_endpoint("https://a.blob.core.windows.net", "a", get), "https://a.blob.core.chinacloudapi.cn");
        assert_eq!(blob_endpoint("https://a.blob.core.windows.net", "a", |_| None), "https://a.blob.core.windows.net");
    }
}
