//! ORC's compression: the codec a table asks for, and the chunked framing ORC puts around
//! every compressed stream and footer.

use std::collections::HashMap;
use std::io::Write;

use orc_rust::proto;

/// ORC's compression chunk size (ORC Java's default `orc.compress.size`).
pub(super) const CHUNK: usize = 256 * 1024;
/// Compression of streams and footers, from the table's `write.orc.compression-codec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrcCompression {
    /// No compression.
    None,
    /// zlib at this level.
    Zlib(u32),
    /// zstd at this level.
    Zstd(i32),
}

impl OrcCompression {
    /// From the table properties (`write.orc.compression-codec`, `-level`); zstd level 3 when
    /// unset. The error names the key and what it takes.
    pub fn from_properties(props: &HashMap<String, String>) -> std::result::Result<Self, String> {
        let level = match props.get("write.orc.compression-level") {
            None => None,
            Some(v) => {
                Some(v.parse::<i32>().map_err(|_| format!("write.orc.compression-level = {v:?} is not a number"))?)
            }
        };
        let codec = props.get("write.orc.compression-codec").map(|c| c.to_ascii_lowercase());
        match codec.as_deref().unwrap_or("zstd") {
            "zstd" => Ok(OrcCompression::Zstd(level.unwrap_or(3))),
            "zlib" => {
                let level = u32::try_from(level.unwrap_or(6))
                    .ok()
                    .filter(|l| *l <= 9)
                    .ok_or("write.orc.compression-level must be 0-9 for zlib")?;
                Ok(OrcCompression::Zlib(level))
            }
            "none" | "uncompressed" => Ok(OrcCompression::None),
            other => Err(format!(
                "write.orc.compression-codec = {other:?} is not supported for ORC files; use zstd, zlib or none"
            )),
        }
    }

    pub(super) fn kind(self) -> proto::CompressionKind {
        match self {
            OrcCompression::None => proto::CompressionKind::None,
            OrcCompression::Zlib(_) => proto::CompressionKind::Zlib,
            OrcCompression::Zstd(_) => proto::CompressionKind::Zstd,
        }
    }

    /// `data` in ORC's framing: chunks of up to 256 KiB, each behind a 3-byte header holding its
    /// length and whether it is stored as is (when compressing would not make it smaller).
    pub(super) fn frame(self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let level = match self {
            OrcCompression::None => return Ok(data.to_vec()),
            OrcCompression::Zlib(level) => level as i32,
            OrcCompression::Zstd(level) => level,
        };
        let mut out = Vec::with_capacity(data.len() / 2 + 16);
        for chunk in data.chunks(CHUNK) {
            let compressed = match self {
                OrcCompression::Zstd(_) => zstd::bulk::compress(chunk, level)?,
                _ => {
                    let mut encoder =
                        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(level as u32));
                    encoder.write_all(chunk)?;
                    encoder.finish()?
                }
            };
            let (original, body) = if compressed.len() < chunk.len() { (0, &compressed[..]) } else { (1, chunk) };
            let header = ((body.len() as u32) << 1) | original;
            out.extend_from_slice(&header.to_le_bytes()[..3]);
            out.extend_from_slice(body);
        }
        Ok(out)
    }
}
