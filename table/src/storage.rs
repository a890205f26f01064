//! Storage set-up: one `FileIO` over opendal for local files and S3.

use std::path::Path;
use std::sync::Arc;

use iceberg::io::{FileIO, FileIOBuilder};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;
use opendal::{Operator, services};

use crate::{CatalogConfig, Error, Result};

/// Builds the FileIO for a catalog: the scheme of each path picks the backend (file, s3, memory).
pub fn file_io(config: &CatalogConfig) -> FileIO {
    FileIOBuilder::new(Arc::new(OpenDalResolvingStorageFactory::new())).with_props(config.storage.iter()).build()
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

/// One spelling per file: `file:/x`, `file:///x` and `/x` are `/x`; `s3a://`/`s3n://` are `s3://`.
pub fn normalize_path(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("file:") {
        return format!("/{}", rest.trim_start_matches('/'));
    }
    for scheme in ["s3a://", "s3n://"] {
        if let Some(rest) = path.strip_prefix(scheme) {
            return format!("s3://{rest}");
        }
    }
    path.to_string()
}

/// An opendal operator rooted at `location` (for listing, which iceberg's FileIO cannot do), and
/// the normalised absolute form of that root, to turn its relative paths back into full ones.
pub fn location_operator(location: &str, catalog: &CatalogConfig) -> Result<(Operator, String)> {
    let normalized = normalize_path(location);
    if let Some(rest) = normalized.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let props = &catalog.storage;
        let mut builder = services::S3::default().bucket(bucket).root(&format!("/{prefix}"));
        if let Some(v) = props.get("s3.endpoint") {
            builder = builder.endpoint(v);
        }
        builder = builder.region(props.get("s3.region").map_or("us-east-1", String::as_str));
        if let Some(v) = props.get("s3.access-key-id") {
            builder = builder.access_key_id(v);
        }
        if let Some(v) = props.get("s3.secret-access-key") {
            builder = builder.secret_access_key(v);
        }
        if let Some(v) = props.get("s3.session-token") {
            builder = builder.session_token(v);
        }
        // The same addressing as the FileIO: virtual-host style unless path style is asked for.
        let path_style = props.get("s3.path-style-access").is_some_and(|v| ["true", "1", "yes"].contains(&v.as_str()));
        if !path_style {
            builder = builder.enable_virtual_host_style();
        }
        let op = Operator::new(builder).map_err(Error::storage("configure S3 access"))?.finish();
        return Ok((op, format!("s3://{bucket}/{prefix}")));
    }
    if normalized.starts_with('/') {
        let op = Operator::new(services::Fs::default().root(&normalized))
            .map_err(Error::storage("configure local file access"))?
            .finish();
        return Ok((op, normalized));
    }
    Err(Error::Config(format!("cannot list table location {location}: only local paths and s3:// are supported")))
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
