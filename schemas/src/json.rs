//! JSON records → Arrow, shaped by an Iceberg schema.
//!
//! Rules: a missing or null optional field is null; a missing required field, a value of the
//! wrong type, a key given twice, or bytes that are not a JSON object make the record bad (it
//! is reported, never dropped silently). Fields the schema does not know are ignored.
//!
//! The decoder streams JSON tokens straight into column builders (`stream.rs`); a reference
//! implementation over `serde_json::Value` (`reference.rs`, tests only) checks it.

use std::sync::Arc;

use arrow_schema::SchemaRef as ArrowSchemaRef;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use iceberg::spec::{PrimitiveType, Schema, StructType, Type};
use serde::{Deserialize, Serialize};

use crate::columns::decode_batch;
pub use crate::decoded::Decoded;
use crate::{Error, Result};

pub mod infer;
#[cfg(test)]
mod reference;
mod stream;

/// Unit of timestamps given as numbers (epoch-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpochUnit {
    /// Whole seconds since the epoch.
    Seconds,
    /// Milliseconds since the epoch.
    #[default]
    Millis,
    /// Microseconds since the epoch.
    Micros,
    /// Nanoseconds since the epoch.
    Nanos,
}

impl EpochUnit {
    pub(crate) fn to_micros(self, n: f64) -> f64 {
        match self {
            EpochUnit::Seconds => n * 1e6,
            EpochUnit::Millis => n * 1e3,
            EpochUnit::Micros => n,
            EpochUnit::Nanos => n / 1e3,
        }
    }
    pub(crate) fn int_to_micros(self, n: i64) -> Option<i64> {
        match self {
            EpochUnit::Seconds => n.checked_mul(1_000_000),
            EpochUnit::Millis => n.checked_mul(1_000),
            EpochUnit::Micros => Some(n),
            EpochUnit::Nanos => Some(n.div_euclid(1_000)),
        }
    }
}

/// Decoder settings.
#[derive(Debug, Clone, Default)]
pub struct JsonOptions {
    /// Unit of numeric timestamp values.
    pub epoch_unit: EpochUnit,
    /// Top-level columns the payload does not provide (Kafka metadata columns, filled later).
    pub metadata_fields: Vec<String>,
}

/// Decodes JSON records for one table schema.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    schema: Arc<Schema>,
    arrow_schema: ArrowSchemaRef,
    options: JsonOptions,
    /// How objects reach columns, made once from the schema.
    plan: Arc<stream::StructPlan>,
}

impl JsonDecoder {
    /// A decoder for records of `schema` (the table's current schema).
    pub fn new(schema: Arc<Schema>, options: JsonOptions) -> Result<Self> {
        check_supported(schema.as_struct(), "")?;
        let arrow_schema = iceberg::arrow::schema_to_arrow_schema(&schema)
            .map_err(|e| Error::Iceberg { context: "convert table schema to Arrow".into(), source: Box::new(e) })?;
        let plan = Arc::new(stream::StructPlan::new(schema.as_struct(), "", &options.metadata_fields));
        Ok(JsonDecoder { schema, arrow_schema: Arc::new(arrow_schema), options, plan })
    }

    /// The table schema records are decoded for.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The Arrow schema of decoded batches (with Iceberg field ids in field metadata).
    pub fn arrow_schema(&self) -> &ArrowSchemaRef {
        &self.arrow_schema
    }

    /// Decodes a batch of payloads (`None` = a record without value).
    pub fn decode<'a>(&self, payloads: impl IntoIterator<Item = Option<&'a [u8]>>) -> Result<Decoded> {
        decode_batch(&self.arrow_schema, payloads, |bytes, columns| {
            stream::decode_record(&self.plan, unframed(bytes), columns, &self.options)
        })
    }

    /// [`JsonDecoder::decode`] without the scanner (serde only), to compare the two.
    #[cfg(test)]
    pub(crate) fn decode_by_serde<'a>(&self, payloads: impl IntoIterator<Item = Option<&'a [u8]>>) -> Result<Decoded> {
        decode_batch(&self.arrow_schema, payloads, |bytes, columns| {
            stream::decode_record_by_serde(&self.plan, unframed(bytes), columns, &self.options)
        })
    }
}

/// The JSON text of a record: after the Confluent frame (magic byte 0, 4-byte schema id) of a
/// registry's JSON Schema serializer, or the whole payload (JSON text never starts with byte 0).
pub(crate) fn unframed(payload: &[u8]) -> &[u8] {
    match payload {
        [0, _, _, _, _, json @ ..] => json,
        _ => payload,
    }
}

/// Microseconds since the epoch (UTC) of an ISO-8601 timestamp.
pub fn parse_timestamp_micros(text: &str) -> Option<i64> {
    if let Some(micros) = parse_rfc3339_fast(text.as_bytes()) {
        return Some(micros);
    }
    let normalized = text.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&normalized) {
        return Some(dt.timestamp_micros());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(&normalized, format) {
            return Some(naive.and_utc().timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_micros())
}

/// The common shape, `YYYY-MM-DD(T| )HH:MM:SS[.f{1,9}](Z|±HH:MM)`, parsed without allocating
/// and without chrono (whose date checks cost more than the parsing); anything else, or an
/// invalid date, is left to chrono.
fn parse_rfc3339_fast(b: &[u8]) -> Option<i64> {
    /// The two ASCII digits at `i`.
    fn two(b: &[u8], i: usize) -> Option<i64> {
        let (tens, ones) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
        (tens < 10 && ones < 10).then(|| i64::from(tens * 10 + ones))
    }
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (two(b, 0)? * 100 + two(b, 2)?, two(b, 5)?, two(b, 8)?);
    let (hour, minute, second) = (two(b, 11)?, two(b, 14)?, two(b, 17)?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        // Below a microsecond: truncated, as chrono's path does.
        let value = frac[..n].iter().take(6).fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0'));
        micros = value * 10i64.pow(6u32.saturating_sub(n as u32));
        rest = &frac[n..];
    }
    let offset_seconds = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (two(rest, 1)?, two(rest, 4)?);
            if h > 23 || m > 59 {
                return None;
            }
            let s = h * 3600 + m * 60;
            if *sign == b'-' { -s } else { s }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day)?;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    seconds.checked_mul(1_000_000)?.checked_add(micros)
}

/// Days since 1970-01-01 of a proleptic Gregorian date with a year in 0..=9999, or `None` for
/// a day the month does not have (the era arithmetic of Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        _ => return None,
    };
    if day < 1 || day > month_days {
        return None;
    }
    // Years start in March, so the leap day is the last day of the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// Parses decimal text (`-12.5`, `1e3`) into an unscaled integer of the given scale. Refuses
/// values that need rounding or exceed the precision: silently changing money is worse than
/// dead-lettering it.
pub fn parse_decimal(text: &str, precision: u32, scale: u32) -> std::result::Result<i128, String> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i32>().map_err(|_| format!("{text:?} is not a decimal"))?),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("{text:?} is not a decimal"));
    }
    // value = digits × 10^(exponent − len(frac)); we need digits × 10^(scale + exponent − len(frac)).
    let all_digits = format!("{int_part}{frac_part}");
    let shift = i64::from(scale) + i64::from(exponent) - frac_part.len() as i64;
    let trimmed = all_digits.trim_start_matches('0');
    let mut unscaled: i128 = 0;
    let too_big = || format!("{text} does not fit decimal({precision},{scale})");
    for b in trimmed.bytes() {
        unscaled = unscaled.checked_mul(10).and_then(|v| v.checked_add(i128::from(b - b'0'))).ok_or_else(too_big)?;
    }
    if shift >= 0 {
        for _ in 0..shift {
            unscaled = unscaled.checked_mul(10).ok_or_else(too_big)?;
        }
    } else {
        for _ in 0..(-shift) {
            if unscaled % 10 != 0 {
                return Err(format!("{text} has more than {scale} fractional digits"));
            }
            unscaled /= 10;
        }
    }
    let limit = 10i128.checked_pow(precision).ok_or_else(too_big)?;
    if unscaled >= limit {
        return Err(too_big());
    }
    Ok(if negative { -unscaled } else { unscaled })
}

/// Refuses, at start-up, types this decoder cannot produce.
fn check_supported(ty: &StructType, path: &str) -> Result<()> {
    for field in ty.fields() {
        let field_path = if path.is_empty() { field.name.clone() } else { format!("{path}.{}", field.name) };
        check_type(&field.field_type, &field_path)?;
    }
    Ok(())
}

fn check_type(ty: &Type, path: &str) -> Result<()> {
    match ty {
        Type::Primitive(PrimitiveType::TimestampNs | PrimitiveType::TimestamptzNs) => Err(Error::Schema(format!(
            "column {path}: nanosecond timestamps (format v3) are not supported; use timestamp or timestamptz"
        ))),
        Type::Primitive(_) => Ok(()),
        Type::Struct(st) => check_supported(st, path),
        Type::List(l) => check_type(&l.element_field.field_type, &format!("{path}.element")),
        Type::Map(m) => {
            check_type(&m.key_field.field_type, &format!("{path}.key"))?;
            check_type(&m.value_field.field_type, &format!("{path}.value"))
        }
    }
}

#[cfg(test)]
mod scanner_tests;
#[cfg(test)]
mod tests;
