//! iceberg's `Storage` over [`stores`](super::stores): the FileIO every table, manifest and
//! metadata file goes through. Credentials a REST catalog vends for a table's location
//! ([`Grants`]) apply to the paths under it, over the catalog's own properties.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use iceberg::io::{FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig, StorageFactory};
use iceberg::{Error, ErrorKind, Result};
use opendal::Operator;
use serde::{Deserialize, Serialize};

use super::stores::{Properties, operator, target};

/// Storage properties granted for the paths under a prefix (a REST catalog's vended
/// credentials); the longest matching prefix wins, as the REST spec asks.
#[derive(Default, Clone)]
pub struct Grants {
    inner: Arc<RwLock<Vec<(String, Properties)>>>,
}

/// Prefixes and property names only: the values are credentials.
impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all = self.inner.read().unwrap_or_else(|e| e.into_inner());
        f.debug_map().entries(all.iter().map(|(prefix, props)| (prefix, props.keys().collect::<Vec<_>>()))).finish()
    }
}

impl Grants {
    /// Grants `props` under `prefix`, replacing what that prefix had (credentials renewed).
    pub fn grant(&self, prefix: &str, props: Properties) {
        let prefix = prefix.trim_end_matches('/').to_string();
        let mut all = self.inner.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|(p, _)| *p != prefix);
        all.push((prefix, props));
    }

    /// The properties for `path`: the longest granted prefix's over `base`.
    pub fn for_path(&self, path: &str, base: &Properties) -> Properties {
        let all = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let best = all
            .iter()
            .filter(|(prefix, _)| path == prefix || path.starts_with(&format!("{prefix}/")))
            .max_by_key(|(prefix, _)| prefix.len());
        let mut props = base.clone();
        if let Some((_, granted)) = best {
            props.extend(granted.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        props
    }
}

/// Builds [`TableStorage`] for a FileIO.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TableStorageFactory {
    /// Vended credentials, shared with the catalog that receives them.
    #[serde(skip)]
    pub grants: Grants,
}

#[typetag::serde]
impl StorageFactory for TableStorageFactory {
    fn build(&self, config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        let props = config.props().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(Arc::new(TableStorage { props, grants: self.grants.clone(), operators: Arc::default() }))
    }
}

/// Every store through one set of operators, built on first use per bucket and credentials.
#[derive(Clone, Serialize, Deserialize)]
pub struct TableStorage {
    props: Properties,
    #[serde(skip)]
    grants: Grants,
    #[serde(skip)]
    operators: Arc<Mutex<HashMap<String, Operator>>>,
}

/// Property names only: the values include keys and secrets.
impl std::fmt::Debug for TableStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableStorage")
            .field("properties", &self.props.keys().collect::<Vec<_>>())
            .field("grants", &self.grants)
            .finish()
    }
}

impl TableStorage {
    /// The operator of `path`'s bucket and the key within it.
    fn operator(&self, path: &str) -> Result<(Operator, String)> {
        let target = target(path).map_err(|e| Error::new(ErrorKind::DataInvalid, e))?;
        let props = self.grants.for_path(path, &self.props);
        // Credentials are part of the key (never shown): renewed ones get a new operator.
        let key = format!("{}\n{props:?}", target.base);
        let mut operators = self.operators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(op) = operators.get(&key) {
            return Ok((op.clone(), target.key));
        }
        let op = operator(&target, "", &props).map_err(|e| Error::new(ErrorKind::DataInvalid, e))?;
        if operators.len() > 64 {
            operators.clear(); // old credentials' operators: dropped rather than kept forever
        }
        operators.insert(key, op.clone());
        Ok((op, target.key))
    }

    fn shared(&self) -> Arc<dyn Storage> {
        Arc::new(self.clone())
    }
}

/// What every store assumes anyway, said explicitly: some GCS emulators answer a write without
/// one with a `null` type that clients then fail to parse.
const CONTENT_TYPE: &str = "application/octet-stream";

fn io_error(e: opendal::Error) -> Error {
    let kind =
        if e.kind() == opendal::ErrorKind::ConfigInvalid { ErrorKind::DataInvalid } else { ErrorKind::Unexpected };
    Error::new(kind, e.to_string()).with_source(e)
}

#[typetag::serde]
#[async_trait]
impl Storage for TableStorage {
    async fn exists(&self, path: &str) -> Result<bool> {
        let (op, key) = self.operator(path)?;
        op.exists(&key).await.map_err(io_error)
    }

    async fn metadata(&self, path: &str) -> Result<FileMetadata> {
        let (op, key) = self.operator(path)?;
        Ok(FileMetadata { size: op.stat(&key).await.map_err(io_error)?.content_length() })
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let (op, key) = self.operator(path)?;
        Ok(op.read(&key).await.map_err(io_error)?.to_bytes())
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn FileRead>> {
        let (op, key) = self.operator(path)?;
        Ok(Box::new(Reader(op.reader(&key).await.map_err(io_error)?)))
    }

    async fn write(&self, path: &str, bs: Bytes) -> Result<()> {
        let (op, key) = self.operator(path)?;
        op.write_with(&key, bs).content_type(CONTENT_TYPE).await.map_err(io_error).map(|_| ())
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn FileWrite>> {
        let (op, key) = self.operator(path)?;
        // On GCS a file written in parts is a resumable upload (GCS's own protocol for large
        // objects, which its emulators serve too), which opendal uses for writes conditional on
        // no object being there: streamed files (data files) are new names, never overwritten.
        let on_gcs = op.info().scheme() == "gcs";
        let writer = op.writer_with(&key).content_type(CONTENT_TYPE).if_not_exists(on_gcs);
        Ok(Box::new(Writer(writer.await.map_err(io_error)?)))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let (op, key) = self.operator(path)?;
        op.delete(&key).await.map_err(io_error)
    }

    async fn delete_prefix(&self, path: &str) -> Result<()> {
        let (op, key) = self.operator(path)?;
        op.delete_with(&format!("{}/", key.trim_end_matches('/'))).recursive(true).await.map_err(io_error)
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> Result<()> {
        while let Some(path) = paths.next().await {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> Result<InputFile> {
        Ok(InputFile::new(self.shared(), path.to_string()))
    }

    fn new_output(&self, path: &str) -> Result<OutputFile> {
        Ok(OutputFile::new(self.shared(), path.to_string()))
    }
}

struct Reader(opendal::Reader);

#[async_trait]
impl FileRead for Reader {
    async fn read(&self, range: std::ops::Range<u64>) -> Result<Bytes> {
        Ok(self.0.read(range).await.map_err(io_error)?.to_bytes())
    }
}

struct Writer(opendal::Writer);

#[async_trait]
impl FileWrite for Writer {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        self.0.write(bs).await.map_err(io_error)
    }

    async fn close(&mut self) -> Result<()> {
        self.0.close().await.map(|_| ()).map_err(io_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_granted_prefix_wins_over_the_catalog_properties() {
        let grants = Grants::default();
        let base: Properties =
            [("s3.region".to_string(), "eu".to_string()), ("s3.access-key-id".into(), "catalog".into())].into();
        grants.grant("s3://lake/db/", [("s3.access-key-id".to_string(), "db".to_string())].into());
        grants.grant("s3://lake/db/t", [("s3.access-key-id".to_string(), "t".to_string())].into());
        let key = |path: &str| grants.for_path(path, &base)["s3.access-key-id"].clone();
        assert_eq!(key("s3://lake/db/t/data/a.parquet"), "t");
        assert_eq!(key("s3://lake/db/t2/data/a.parquet"), "db", "t2 is not under t");
        assert_eq!(key("s3://lake/other/a.parquet"), "catalog");
        assert_eq!(grants.for_path("s3://lake/db/t/x", &base)["s3.region"], "eu");
        grants.grant("s3://lake/db/t", [("s3.access-key-id".to_string(), "renewed".to_string())].into());
        assert_eq!(key("s3://lake/db/t/data/a.parquet"), "renewed");
        assert!(!format!("{grants:?}").contains("renewed"), "credentials are not shown: {grants:?}");
    }
}
