//! One JSON value into one column, by the column's plan: numbers, strings, timestamps,
//! decimals, binaries, nested structs, lists and maps, each checked against the column type.

use super::*;
use crate::error::Reason;

/// One value into one column.
pub(super) struct ValueSeed<'a, 'o> {
    pub(super) ty: &'a TypePlan,
    pub(super) required: bool,
    pub(super) required_message: RequiredMessage,
    pub(super) column: &'a mut Column,
    pub(super) ctx: &'a mut Ctx<'o>,
    pub(super) path: PathRef<'a>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl ValueSeed<'_, '_> {
    fn primitive(&self) -> Option<&PrimitiveType> {
        if let TypePlan::Primitive(p) = self.ty { Some(p) } else { None }
    }

    fn expected(&self) -> &'static str {
        match self.ty {
            TypePlan::Struct(_) => "an object",
            TypePlan::List { .. } => "an array",
            TypePlan::Map { .. } => "an object",
            TypePlan::Primitive(p) => match p {
                PrimitiveType::Boolean => "a boolean",
                PrimitiveType::Int | PrimitiveType::Long => "an integer",
                PrimitiveType::Float | PrimitiveType::Double => "a number",
                PrimitiveType::Decimal { .. } => "a decimal number or string",
                PrimitiveType::String => "a string",
                PrimitiveType::Binary | PrimitiveType::Fixed(_) => "a base64 string",
                PrimitiveType::Uuid => "a UUID string",
                PrimitiveType::Date => "a date string or a day number",
                PrimitiveType::Time => "a time string or microseconds",
                _ => "an ISO-8601 string or an epoch number",
            },
        }
    }

    fn mismatch<E: de::Error>(self, found: Found<'_>) -> E {
        let error = wrong(self.path, self.expected(), found);
        self.ctx.fail(error)
    }

    fn integer<E: de::Error>(self, n: i128) -> Result<(), E> {
        let Some(p) = self.primitive() else { return Err(self.mismatch(Found::Int(n))) };
        let result = match p {
            PrimitiveType::Int | PrimitiveType::Date => {
                let ty = if matches!(p, PrimitiveType::Int) { "int" } else { "date" };
                i32::try_from(n).map(|v| self.column.push_i32(v)).map_err(|_| out_of_range(self.path, n, ty))
            }
            PrimitiveType::Long | PrimitiveType::Time => {
                i64::try_from(n).map(|v| self.column.push_i64(v)).map_err(|_| out_of_range(self.path, n, "long"))
            }
            PrimitiveType::Float => {
                self.column.push_f32(n as f32);
                Ok(())
            }
            PrimitiveType::Double => {
                self.column.push_f64(n as f64);
                Ok(())
            }
            PrimitiveType::Decimal { precision, scale } => parse_decimal(&n.to_string(), *precision, *scale)
                .map(|v| self.column.push_i128(v))
                .map_err(|m| RecordError::new(Reason::OutOfRange, format!("{}: {m}", self.path))),
            PrimitiveType::Timestamp | PrimitiveType::Timestamptz => {
                match i64::try_from(n).ok().and_then(|i| self.ctx.options.epoch_unit.int_to_micros(i)) {
                    Some(us) => {
                        self.column.push_i64(us);
                        Ok(())
                    }
                    None => Err(out_of_range(self.path, n, "timestamp")),
                }
            }
            _ => return Err(self.mismatch(Found::Int(n))),
        };
        result.map_err(|e| self.ctx.fail(e))
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expected())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.required {
            let message = match self.required_message {
                RequiredMessage::Field => format!("required field {} is missing or null", self.path),
                RequiredMessage::Element => format!("{} is null but elements are required", self.path),
                RequiredMessage::Value => format!("{} is null but values are required", self.path),
            };
            return Err(self.ctx.fail(RecordError::new(Reason::MissingField, message)));
        }
        self.column.push_null();
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        match self.primitive() {
            Some(PrimitiveType::Boolean) => {
                self.column.push_bool(v);
                Ok(())
            }
            _ => Err(self.mismatch(Found::Bool(v))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.integer(v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.integer(v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let Some(p) = self.primitive() else { return Err(self.mismatch(Found::Float(v))) };
        let result = match p {
            PrimitiveType::Float => {
                self.column.push_f32(v as f32);
                Ok(())
            }
            PrimitiveType::Double => {
                self.column.push_f64(v);
                Ok(())
            }
            PrimitiveType::Decimal { precision, scale } => {
                // The shortest text that reads back as this double: what the producer wrote.
                let text = serde_json::Number::from_f64(v).map(|n| n.to_string()).unwrap_or_default();
                parse_decimal(&text, *precision, *scale)
                    .map(|d| self.column.push_i128(d))
                    .map_err(|m| RecordError::new(Reason::OutOfRange, format!("{}: {m}", self.path)))
            }
            PrimitiveType::Timestamp | PrimitiveType::Timestamptz => {
                let us = self.ctx.options.epoch_unit.to_micros(v);
                if us.is_finite() && us.abs() < 9.2e18 {
                    {
                        self.column.push_i64(us.round() as i64);
                        Ok(())
                    }
                } else {
                    Err(out_of_range(self.path, v, "timestamp"))
                }
            }
            _ => return Err(self.mismatch(Found::Float(v))),
        };
        result.map_err(|e| self.ctx.fail(e))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        let Some(p) = self.primitive() else { return Err(self.mismatch(Found::Str(v))) };
        let path = self.path;
        let result = match p {
            PrimitiveType::String => {
                self.column.push_bytes(v.as_bytes());
                Ok(())
            }
            PrimitiveType::Decimal { precision, scale } => parse_decimal(v.trim(), *precision, *scale)
                .map(|d| self.column.push_i128(d))
                .map_err(|m| RecordError::new(Reason::OutOfRange, format!("{path}: {m}"))),
            PrimitiveType::Binary | PrimitiveType::Fixed(_) => {
                match base64::engine::general_purpose::STANDARD.decode(v) {
                    Err(e) => Err(RecordError::new(Reason::WrongType, format!("{path}: not base64: {e}"))),
                    Ok(bytes) => match p {
                        PrimitiveType::Fixed(len) if bytes.len() as u64 != *len => Err(RecordError::new(
                            Reason::OutOfRange,
                            format!("{path}: {} bytes, expected {len}", bytes.len()),
                        )),
                        _ => {
                            self.column.push_bytes(&bytes);
                            Ok(())
                        }
                    },
                }
            }
            PrimitiveType::Uuid => uuid::Uuid::parse_str(v)
                .map(|id| self.column.push_bytes(id.as_bytes()))
                .map_err(|e| RecordError::new(Reason::WrongType, format!("{path}: {v:?} is not a UUID: {e}"))),
            PrimitiveType::Date => match NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d") {
                Ok(date) => {
                    let days = date.signed_duration_since(NaiveDate::default()).num_days();
                    i32::try_from(days).map(|d| self.column.push_i32(d)).map_err(|_| out_of_range(path, v, "date"))
                }
                Err(e) => {
                    Err(RecordError::new(Reason::WrongType, format!("{path}: {v:?} is not a date (YYYY-MM-DD): {e}")))
                }
            },
            PrimitiveType::Time => match NaiveTime::parse_from_str(v.trim(), "%H:%M:%S%.f") {
                Ok(time) => {
                    let micros =
                        i64::from(time.num_seconds_from_midnight()) * 1_000_000 + i64::from(time.nanosecond() / 1_000);
                    {
                        self.column.push_i64(micros);
                        Ok(())
                    }
                }
                Err(e) => Err(RecordError::new(
                    Reason::WrongType,
                    format!("{path}: {v:?} is not a time (HH:MM:SS[.ffffff]): {e}"),
                )),
            },
            PrimitiveType::Timestamp | PrimitiveType::Timestamptz => match parse_timestamp_micros(v.trim()) {
                Some(us) => {
                    self.column.push_i64(us);
                    Ok(())
                }
                None => Err(RecordError::new(Reason::WrongType, format!("{path}: {v:?} is not an ISO-8601 timestamp"))),
            },
            _ => return Err(self.mismatch(Found::Str(v))),
        };
        result.map_err(|e| self.ctx.fail(e))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let TypePlan::List { element, element_required } = self.ty else {
            return Err(self.mismatch(Found::Array));
        };
        let list_path = self.path.base();
        let Some(column) = self.column.list_element() else { return Err(self.mismatch(Found::Array)) };
        let mut i = 0usize;
        loop {
            let seed = ValueSeed {
                ty: element,
                required: *element_required,
                required_message: RequiredMessage::Element,
                column: &mut *column,
                ctx: &mut *self.ctx,
                path: PathRef::Element(&list_path, i),
            };
            if seq.next_element_seed(seed)?.is_none() {
                break;
            }
            i += 1;
        }
        self.column.end_nested();
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match self.ty {
            TypePlan::Struct(plan) => {
                let Some(children) = self.column.struct_fields() else { return Err(self.mismatch(Found::Object)) };
                StructSeed { plan, columns: children, ctx: self.ctx, top: false, path: self.path }.visit_map(map)?;
                self.column.end_struct();
                Ok(())
            }
            TypePlan::Map { key, value, value_required } => {
                let Some((keys, values)) = self.column.map_entries() else {
                    return Err(self.mismatch(Found::Object));
                };
                let map_path = self.path.base();
                while let Some(Key(text)) = map.next_key::<Key<'de>>()? {
                    let entry = PathRef::Entry(&map_path, &text);
                    push_key(key, &text, keys, entry).map_err(|e| self.ctx.fail::<A::Error>(e))?;
                    map.next_value_seed(ValueSeed {
                        ty: value,
                        required: *value_required,
                        required_message: RequiredMessage::Value,
                        column: &mut *values,
                        ctx: &mut *self.ctx,
                        path: entry,
                    })?;
                }
                self.column.end_nested();
                Ok(())
            }
            _ => Err(self.mismatch(Found::Object)),
        }
    }
}

/// JSON object keys are text; numeric and boolean key types are parsed from it.
fn push_key(
    ty: &PrimitiveType,
    text: &str,
    keys: &mut Column,
    path: PathRef<'_>,
) -> std::result::Result<(), RecordError> {
    let key_path = format!("{path} key");
    let bad = |expected: &str| wrong(&key_path, expected, Found::Str(text));
    match ty {
        PrimitiveType::Int => {
            let n: i64 = text.trim().parse().map_err(|_| bad("an integer"))?;
            keys.push_i32(i32::try_from(n).map_err(|_| out_of_range(&key_path, n, "int"))?);
        }
        PrimitiveType::Long => keys.push_i64(text.trim().parse().map_err(|_| bad("an integer"))?),
        PrimitiveType::Float => keys.push_f32(text.trim().parse().map_err(|_| bad("a number"))?),
        PrimitiveType::Double => keys.push_f64(text.trim().parse().map_err(|_| bad("a number"))?),
        PrimitiveType::Boolean => keys.push_bool(text.trim().parse().map_err(|_| bad("a boolean"))?),
        PrimitiveType::String => keys.push_bytes(text.as_bytes()),
        PrimitiveType::Uuid => {
            let id = uuid::Uuid::parse_str(text).map_err(|_| bad("a UUID string"))?;
            keys.push_bytes(id.as_bytes());
        }
        PrimitiveType::Date => {
            let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| bad("a date string"))?;
            keys.push_i32(date.signed_duration_since(NaiveDate::default()).num_days() as i32);
        }
        other => {
            return Err(RecordError::new(
                Reason::WrongType,
                format!("{key_path}: map keys of type {other} are not supported"),
            ));
        }
    }
    Ok(())
}
