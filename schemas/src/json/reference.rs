//! The reference JSON decoder (tests only): `serde_json::Value` → a value tree → Arrow, the
//! straightforward implementation of the rules. The fast path (`stream.rs`) must agree with it
//! on every record; the tests compare the two.

use arrow_array::{RecordBatch, RecordBatchOptions};
use base64::Engine;
use chrono::{NaiveDate, NaiveTime, Timelike};
use iceberg::spec::{PrimitiveType, StructType, Type};
use serde_json::Value;

use super::{Decoded, JsonDecoder, parse_decimal, parse_timestamp_micros};
use crate::error::Reason;
use crate::value::{Val, build_array};
use crate::{RecordError, Result};

impl JsonDecoder {
    /// Decodes a batch of payloads (`None` = a record without value).
    pub(crate) fn decode_reference<'a>(&self, payloads: impl IntoIterator<Item = Option<&'a [u8]>>) -> Result<Decoded> {
        let mut rows_vals = Vec::new();
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for (index, payload) in payloads.into_iter().enumerate() {
            match self.decode_record(payload) {
                Ok(row) => {
                    rows_vals.push(row);
                    rows.push(index);
                }
                Err(e) => errors.push((index, e)),
            }
        }
        let null = Val::Null;
        let mut columns = Vec::with_capacity(self.arrow_schema.fields().len());
        for (c, field) in self.arrow_schema.fields().iter().enumerate() {
            let column: Vec<&Val> = rows_vals
                .iter()
                .map(|r| if let Val::Struct(items) = r { items.get(c).unwrap_or(&null) } else { &null })
                .collect();
            columns.push(build_array(field.data_type(), &column)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows_vals.len()));
        let batch = RecordBatch::try_new_with_options(self.arrow_schema.clone(), columns, &options)?;
        Ok(Decoded { batch, rows, errors })
    }

    fn decode_record(&self, payload: Option<&[u8]>) -> std::result::Result<Val, RecordError> {
        let bytes = payload.ok_or_else(|| RecordError::new(Reason::Empty, "the record has no value"))?;
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| RecordError::new(Reason::NotJson, format!("the value is not valid JSON: {e}")))?;
        let Value::Object(_) = &value else {
            return Err(RecordError::new(
                Reason::WrongType,
                format!("the value is JSON {}, expected an object", kind(&value)),
            ));
        };
        self.convert_struct(&value, self.schema.as_struct(), "")
    }

    fn convert_struct(&self, value: &Value, ty: &StructType, path: &str) -> std::result::Result<Val, RecordError> {
        let Value::Object(map) = value else {
            return Err(wrong(path, "an object", value));
        };
        let mut items = Vec::with_capacity(ty.fields().len());
        for field in ty.fields() {
            if path.is_empty() && self.options.metadata_fields.contains(&field.name) {
                items.push(Val::Null);
                continue;
            }
            let field_path = if path.is_empty() { field.name.clone() } else { format!("{path}.{}", field.name) };
            match map.get(&field.name) {
                None | Some(Value::Null) => {
                    if field.required {
                        return Err(RecordError::new(
                            Reason::MissingField,
                            format!("required field {field_path} is missing or null"),
                        ));
                    }
                    items.push(Val::Null);
                }
                Some(v) => items.push(self.convert(v, &field.field_type, &field_path)?),
            }
        }
        Ok(Val::Struct(items))
    }

    fn convert(&self, value: &Value, ty: &Type, path: &str) -> std::result::Result<Val, RecordError> {
        match ty {
            Type::Primitive(p) => self.convert_primitive(value, p, path),
            Type::Struct(st) => self.convert_struct(value, st, path),
            Type::List(list) => {
                let Value::Array(items) = value else {
                    return Err(wrong(path, "an array", value));
                };
                let element = &list.element_field;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    if item.is_null() {
                        if element.required {
                            return Err(RecordError::new(
                                Reason::MissingField,
                                format!("{path}[{i}] is null but elements are required"),
                            ));
                        }
                        out.push(Val::Null);
                    } else {
                        out.push(self.convert(item, &element.field_type, &format!("{path}[{i}]"))?);
                    }
                }
                Ok(Val::List(out))
            }
            Type::Map(map) => {
                let Value::Object(entries) = value else {
                    return Err(wrong(path, "an object", value));
                };
                let mut out = Vec::with_capacity(entries.len());
                for (key_text, item) in entries {
                    let entry_path = format!("{path}[{key_text:?}]");
                    let key = self.convert_key(key_text, &map.key_field.field_type, &entry_path)?;
                    let val = if item.is_null() {
                        if map.value_field.required {
                            return Err(RecordError::new(
                                Reason::MissingField,
                                format!("{entry_path} is null but values are required"),
                            ));
                        }
                        Val::Null
                    } else {
                        self.convert(item, &map.value_field.field_type, &entry_path)?
                    };
                    out.push((key, val));
                }
                Ok(Val::Map(out))
            }
        }
    }

    /// JSON object keys are strings; non-string key types are parsed from them.
    fn convert_key(&self, key: &str, ty: &Type, path: &str) -> std::result::Result<Val, RecordError> {
        let as_json = match ty {
            Type::Primitive(
                PrimitiveType::Int
                | PrimitiveType::Long
                | PrimitiveType::Float
                | PrimitiveType::Double
                | PrimitiveType::Boolean,
            ) => serde_json::from_str::<Value>(key).unwrap_or_else(|_| Value::String(key.to_string())),
            _ => Value::String(key.to_string()),
        };
        self.convert(&as_json, ty, &format!("{path} key"))
    }

    fn convert_primitive(
        &self,
        value: &Value,
        ty: &PrimitiveType,
        path: &str,
    ) -> std::result::Result<Val, RecordError> {
        match ty {
            PrimitiveType::Boolean => value.as_bool().map(Val::Bool).ok_or_else(|| wrong(path, "a boolean", value)),
            PrimitiveType::Int => {
                let n = integer(value, path)?;
                i32::try_from(n).map(Val::Int).map_err(|_| out_of_range(path, value, "int"))
            }
            PrimitiveType::Long => integer(value, path).map(Val::Long),
            PrimitiveType::Float => {
                value.as_f64().map(|f| Val::Float(f as f32)).ok_or_else(|| wrong(path, "a number", value))
            }
            PrimitiveType::Double => value.as_f64().map(Val::Double).ok_or_else(|| wrong(path, "a number", value)),
            PrimitiveType::Decimal { precision, scale } => {
                let text = match value {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.trim().to_string(),
                    _ => return Err(wrong(path, "a decimal number or string", value)),
                };
                parse_decimal(&text, *precision, *scale)
                    .map(Val::Decimal)
                    .map_err(|m| RecordError::new(Reason::OutOfRange, format!("{path}: {m}")))
            }
            PrimitiveType::String => match value {
                Value::String(s) => Ok(Val::Str(s.clone())),
                _ => Err(wrong(path, "a string", value)),
            },
            PrimitiveType::Binary | PrimitiveType::Fixed(_) => {
                let Value::String(s) = value else {
                    return Err(wrong(path, "a base64 string", value));
                };
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| RecordError::new(Reason::WrongType, format!("{path}: not base64: {e}")))?;
                if let PrimitiveType::Fixed(len) = ty
                    && bytes.len() as u64 != *len
                {
                    return Err(RecordError::new(
                        Reason::OutOfRange,
                        format!("{path}: {} bytes, expected {len}", bytes.len()),
                    ));
                }
                Ok(Val::Bytes(bytes))
            }
            PrimitiveType::Uuid => {
                let Value::String(s) = value else {
                    return Err(wrong(path, "a UUID string", value));
                };
                let id = uuid::Uuid::parse_str(s)
                    .map_err(|e| RecordError::new(Reason::WrongType, format!("{path}: {s:?} is not a UUID: {e}")))?;
                Ok(Val::Bytes(id.as_bytes().to_vec()))
            }
            PrimitiveType::Date => match value {
                Value::String(s) => {
                    let date = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| {
                        RecordError::new(Reason::WrongType, format!("{path}: {s:?} is not a date (YYYY-MM-DD): {e}"))
                    })?;
                    let days = date.signed_duration_since(NaiveDate::default()).num_days();
                    i32::try_from(days).map(Val::Int).map_err(|_| out_of_range(path, value, "date"))
                }
                Value::Number(_) => {
                    let n = integer(value, path)?;
                    i32::try_from(n).map(Val::Int).map_err(|_| out_of_range(path, value, "date"))
                }
                _ => Err(wrong(path, "a date string or a day number", value)),
            },
            PrimitiveType::Time => match value {
                Value::String(s) => {
                    let time = NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f").map_err(|e| {
                        RecordError::new(
                            Reason::WrongType,
                            format!("{path}: {s:?} is not a time (HH:MM:SS[.ffffff]): {e}"),
                        )
                    })?;
                    let micros =
                        i64::from(time.num_seconds_from_midnight()) * 1_000_000 + i64::from(time.nanosecond() / 1_000);
                    Ok(Val::Long(micros))
                }
                Value::Number(_) => integer(value, path).map(Val::Long),
                _ => Err(wrong(path, "a time string or microseconds", value)),
            },
            PrimitiveType::Timestamp | PrimitiveType::Timestamptz => self.timestamp(value, path),
            other => Err(RecordError::new(Reason::WrongType, format!("{path}: type {other} is not supported"))),
        }
    }

    /// ISO-8601 text (with or without offset; without one it is taken as UTC) or an epoch number.
    fn timestamp(&self, value: &Value, path: &str) -> std::result::Result<Val, RecordError> {
        match value {
            Value::String(s) => parse_timestamp_micros(s.trim()).map(Val::Long).ok_or_else(|| {
                RecordError::new(Reason::WrongType, format!("{path}: {s:?} is not an ISO-8601 timestamp"))
            }),
            Value::Number(n) => {
                let micros = if let Some(i) = n.as_i64() {
                    self.options.epoch_unit.int_to_micros(i)
                } else {
                    n.as_f64()
                        .map(|f| self.options.epoch_unit.to_micros(f))
                        .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                        .map(|f| f.round() as i64)
                };
                micros.map(Val::Long).ok_or_else(|| out_of_range(path, value, "timestamp"))
            }
            _ => Err(wrong(path, "an ISO-8601 string or an epoch number", value)),
        }
    }
}

fn integer(value: &Value, path: &str) -> std::result::Result<i64, RecordError> {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(i),
            None if n.is_u64() => Err(out_of_range(path, value, "long")),
            None => Err(wrong(path, "an integer", value)),
        },
        _ => Err(wrong(path, "an integer", value)),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong(path: &str, expected: &str, value: &Value) -> RecordError {
    let mut shown = value.to_string();
    if shown.len() > 60 {
        shown.truncate(57);
        shown.push_str("...");
    }
    RecordError::new(Reason::WrongType, format!("{path}: expected {expected}, found {} {shown}", kind(value)))
}

fn out_of_range(path: &str, value: &Value, ty: &str) -> RecordError {
    RecordError::new(Reason::OutOfRange, format!("{path}: {value} is out of range for {ty}"))
}
