//! Storage set-up, once for every store: local files, S3, GCS and Azure ([`stores`]), used by
//! the FileIO that reads and writes table files ([`io`]) and by listing ([`location_operator`]).

mod io;
pub mod stores;

use std::path::Path;
use std::sync::Arc;

use iceberg::io::{FileIO, FileIOBuilder};
use opendal::Operator;

pub use io::{Grants, TableStorageFactory};
pub use stores::Properties;

use crate::{CatalogConfig, Error, Result};

/// The FileIO for a catalog's tables: the scheme of each path picks the store; `grants` holds
/// credentials the catalog vends per table location.
pub fn file_io(config: &CatalogConfig, grants: &Grants) -> FileIO {
    FileIOBuilder::new(Arc::new(TableStorageFactory { grants: grants.clone() }))
        .with_props(config.storage.iter())
        .build()
}

/// Writes, reads back and deletes a small object under `location`: whether this process may
/// store files there (`icefall-writer validate`). The error names the location and what to check.
pub async fn probe_write(file_io: &FileIO, location: &str) -> Result<()> {
    let path = format!("{}/icefall-probe-{}", location.trim_end_matches('/'), uuid::Uuid::new_v4());
    let hint = |step: &str, e: iceberg::Error| {
        Error::Config(format!(
            "storage: cannot {step} {path} ({e}); check that the location exists and that catalog.storage (or the \
             environment's credentials) grants write and delete access there"
        ))
    };
    let output = file_io.new_output(&path).map_err(|e| hint("open", e))?;
    output.write(bytes::Bytes::from_static(b"icefall validate")).await.map_err(|e| hint("write", e))?;
    let read = file_io.new_input(&path).map_err(|e| hint("open", e))?.read().await.map_err(|e| hint("read", e))?;
    file_io.delete(&path).await.map_err(|e| hint("delete", e))?;
    if read.as_ref() != b"icefall validate" {
        return Err(Error::Config(format!("storage: {path} read back other bytes than were written")));
    }
    Ok(())
}

/// Turns a user-given location into the canonical form we store: local paths become absolute
/// `file:///…` URLs; URLs with a scheme pass through without a trailing slash.
pub fn normalize_location(location: &str) -> Result<String> {
    let trimmed = location.trim_end_matches('/');
    if let Some(rest) = trimmed.strip_prefix("file:") {
        let path = rest.trim_start_matches('/');
        return Ok(format!("file:///{path}"));
    }
    if trimmed.contains("://") {
        return Ok(trimmed.to_string());
    }
    let path = Path::new(trimmed);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::Config(format!("cannot resolve relative warehouse path {location:?}: {e}")))?
            .join(path)
    };
    let text = absolute.to_string_lossy();
    Ok(format!("file:///{}", text.trim_start_matches('/')))
}

/// The local path of a `file:` location, if it is one.
pub fn local_path(location: &str) -> Option<String> {
    location.strip_prefix("file:").map(|rest| format!("/{}", rest.trim_start_matches('/')))
}

/// One spelling per file: `file:/x`, `file:///x` and `/x` are `/x`; `s3a://`/`s3n://` are
/// `s3://`, `gcs://` is `gs://`.
pub fn normalize_path(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("file:") {
        return format!("/{}", rest.trim_start_matches('/'));
    }
    for (scheme, canonical) in [("s3a://", "s3://"), ("s3n://", "s3://"), ("gcs://", "gs://")] {
        if let Some(rest) = path.strip_prefix(scheme) {
            return format!("{canonical}{rest}");
        }
    }
    path.to_string()
}

/// An opendal operator rooted at `location` (for listing, which iceberg's FileIO cannot do), and
/// the normalised absolute form of that root, to turn its relative paths back into full ones.
/// `props` are the storage properties in force there ([`crate::Catalog::storage_properties`]).
pub fn location_operator(location: &str, props: &Properties) -> Result<(Operator, String)> {
    let normalized = normalize_path(location);
    let target = stores::target(&normalized).map_err(|e| Error::Config(format!("cannot list {location}: {e}")))?;
    let op = stores::operator(&target, &target.key, props).map_err(Error::Config)?;
    let root = match target.store {
        stores::Store::Local => format!("/{}", target.key),
        _ => format!("{}/{}", target.base, target.key),
    };
    Ok((op, root.trim_end_matches('/').to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_path_is_one() {
        assert_eq!(normalize_path("file:/w/t/data/a.parquet"), "/w/t/data/a.parquet");
        assert_eq!(normalize_path("file:///w/t/data/a.parquet"), "/w/t/data/a.parquet");
        assert_eq!(normalize_path("/w/t/data/a.parquet"), "/w/t/data/a.parquet");
        assert_eq!(normalize_path("s3a://b/t/a.parquet"), "s3://b/t/a.parquet");
        assert_eq!(normalize_path("s3://b/t/a.parquet"), "s3://b/t/a.parquet");
    }

    #[test]
    fn normalizes_local_forms_to_one() {
        assert_eq!(normalize_location("/x/y/").ok().as_deref(), Some("file:///x/y"));
        assert_eq!(normalize_location("file:/x/y").ok().as_deref(), Some("file:///x/y"));
        assert_eq!(normalize_location("file:///x/y").ok().as_deref(), Some("file:///x/y"));
        assert_eq!(normalize_location("s3://b/p/").ok().as_deref(), Some("s3://b/p"));
        assert_eq!(local_path("file:///x/y").as_deref(), Some("/x/y"));
    }
}
