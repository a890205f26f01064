//! Storage set-up: one `FileIO` over opendal for local files and S3.

use std::path::Path;
use std::sync::Arc;

use iceberg::io::{FileIO, FileIOBuilder};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;

use crate::{CatalogConfig, Error, Result};

/// Builds the FileIO for a catalog: the scheme of each path picks the backend (file, s3, memory).
pub fn file_io(config: &CatalogConfig) -> FileIO {
    FileIOBuilder::new(Arc::new(OpenDalResolvingStorageFactory::new())).with_props(config.storage.iter()).build()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_local_forms_to_one() {
        assert_eq!(normalize_location("/x/y/").ok().as_deref(), Some("file:///x/y"));
        assert_eq!(normalize_location("file:/x/y").ok().as_deref(), Some("file:///x/y"));
        assert_eq!(normalize_location("file:///x/y").ok().as_deref(), Some("file:///x/y"));
        assert_eq!(normalize_location("s3://b/p/").ok().as_deref(), Some("s3://b/p"));
        assert_eq!(local_path("file:///x/y").as_deref(), Some("/x/y"));
    }
}
