//! The JSON decoder's fast path: the JSON token stream (serde_json's deserializer) drives the
//! column builders directly, guided by a plan made once from the table schema. No
//! `serde_json::Value`, no per-record value tree; object keys without escapes are borrowed.
//! The rules are those of the module docs of [`crate::json`]; `reference.rs` (tests only)
//! implements them the straightforward way and the tests check both agree. (One difference:
//! values under keys the table does not have are skipped after a syntax check only.)

use std::collections::HashMap;
use std::fmt;

use base64::Engine;
use chrono::{NaiveDate, NaiveTime, Timelike};
use iceberg::spec::{PrimitiveType, StructType, Type};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{JsonOptions, parse_decimal, parse_timestamp_micros};
use crate::RecordError;
use crate::columns::Column;

/// How one struct's JSON object reaches its columns.
#[derive(Debug)]
pub(crate) struct StructPlan {
    fields: Vec<FieldPlan>,
    /// Field names, for structs small enough that comparing names beats hashing them.
    names: Vec<String>,
    by_name: HashMap<String, usize>,
}

/// Up to this many fields, a key is found by comparing names (no hashing).
const LINEAR_LOOKUP: usize = 16;

#[derive(Debug)]
struct FieldPlan {
    path: String,
    required: bool,
    /// A top-level metadata column: whatever the payload says is ignored (filled later).
    from_metadata: bool,
    ty: TypePlan,
}

#[derive(Debug)]
enum TypePlan {
    Primitive(PrimitiveType),
    Struct(Box<StructPlan>),
    List { element: Box<TypePlan>, element_required: bool },
    Map { key: PrimitiveType, value: Box<TypePlan>, value_required: bool },
}

impl StructPlan {
    pub(crate) fn new(ty: &StructType, path: &str, metadata_fields: &[String]) -> Self {
        let mut fields = Vec::with_capacity(ty.fields().len());
        let mut by_name = HashMap::new();
        for (i, field) in ty.fields().iter().enumerate() {
            let field_path = if path.is_empty() { field.name.clone() } else { format!("{path}.{}", field.name) };
            by_name.insert(field.name.clone(), i);
            fields.push(FieldPlan {
                ty: TypePlan::new(&field.field_type, &field_path),
                path: field_path,
                required: field.required,
                from_metadata: path.is_empty() && metadata_fields.contains(&field.name),
            });
        }
        let names = ty.fields().iter().map(|f| f.name.clone()).collect();
        StructPlan { fields, names, by_name }
    }

    fn index(&self, key: &str) -> Option<usize> {
        if self.names.len() <= LINEAR_LOOKUP {
            self.names.iter().position(|n| n == key)
        } else {
            self.by_name.get(key).copied()
        }
    }
}

impl TypePlan {
    fn new(ty: &Type, path: &str) -> Self {
        match ty {
            Type::Primitive(p) => TypePlan::Primitive(p.clone()),
            Type::Struct(s) => TypePlan::Struct(Box::new(StructPlan::new(s, path, &[]))),
            Type::List(l) => TypePlan::List {
                element: Box::new(TypePlan::new(&l.element_field.field_type, path)),
                element_required: l.element_field.required,
            },
            Type::Map(m) => TypePlan::Map {
                key: match m.key_field.field_type.as_ref() {
                    Type::Primitive(p) => p.clone(),
                    _ => PrimitiveType::String, // refused at start-up by the decoder's checks
                },
                value: Box::new(TypePlan::new(&m.value_field.field_type, path)),
                value_required: m.value_field.required,
            },
        }
    }
}

/// Decodes one JSON object into `columns` (the table's columns): one value pushed into each.
pub(crate) fn decode_record(
    plan: &StructPlan,
    bytes: &[u8],
    columns: &mut [Column],
    options: &JsonOptions,
) -> std::result::Result<(), RecordError> {
    let mut ctx = Ctx { options, error: None };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = StructSeed { plan, columns, ctx: &mut ctx, top: true, path: PathRef::Field("") }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(ctx
            .error
            .take()
            .unwrap_or_else(|| RecordError::new("not_json", format!("the value is not valid JSON: {e}")))),
    }
}

/// Carries the precise reason out of serde (whose error type only holds text).
struct Ctx<'o> {
    options: &'o JsonOptions,
    error: Option<RecordError>,
}

impl Ctx<'_> {
    fn fail<E: de::Error>(&mut self, error: RecordError) -> E {
        let text = error.to_string();
        self.error.get_or_insert(error);
        E::custom(text)
    }
}

/// A JSON value as the error message shows it.
enum Found<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
    Array,
    Object,
}

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Null => write!(f, "null"),
            Found::Bool(b) => write!(f, "boolean {b}"),
            Found::Int(n) => write!(f, "number {n}"),
            Found::Float(x) => write!(f, "number {x}"),
            Found::Str(s) if s.len() > 60 => write!(f, "string {:?}...", &s[..s.floor_char_boundary(57)]),
            Found::Str(s) => write!(f, "string {s:?}"),
            Found::Array => write!(f, "array"),
            Found::Object => write!(f, "object"),
        }
    }
}

/// Where a value is, for messages: formatted only when an error needs it.
#[derive(Clone, Copy)]
enum PathRef<'a> {
    Field(&'a str),
    /// `list[i]`
    Element(&'a str, usize),
    /// `map["key"]`
    Entry(&'a str, &'a str),
}

impl<'a> PathRef<'a> {
    /// The path as text to build element paths on (borrowed for a field: the common case).
    fn base(self) -> std::borrow::Cow<'a, str> {
        match self {
            PathRef::Field(p) => std::borrow::Cow::Borrowed(p),
            other => std::borrow::Cow::Owned(other.to_string()),
        }
    }
}

impl fmt::Display for PathRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathRef::Field(p) => write!(f, "{p}"),
            PathRef::Element(p, i) => write!(f, "{p}[{i}]"),
            PathRef::Entry(p, k) => write!(f, "{p}[{k:?}]"),
        }
    }
}

fn wrong(path: impl fmt::Display, expected: &str, found: Found<'_>) -> RecordError {
    RecordError::new("wrong_type", format!("{path}: expected {expected}, found {found}"))
}

fn out_of_range(path: impl fmt::Display, value: impl fmt::Display, ty: &str) -> RecordError {
    RecordError::new("out_of_range", format!("{path}: {value} is out of range for {ty}"))
}

struct StructSeed<'a, 'o> {
    plan: &'a StructPlan,
    columns: &'a mut [Column],
    ctx: &'a mut Ctx<'o>,
    /// The record itself (its messages differ: "the value is JSON …").
    top: bool,
    path: PathRef<'a>,
}

impl<'de> DeserializeSeed<'de> for StructSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl StructSeed<'_, '_> {
    fn not_an_object<E: de::Error>(self, found: Found<'_>) -> E {
        let error = if self.top {
            let kind = match found {
                Found::Null => "null",
                Found::Bool(_) => "boolean",
                Found::Int(_) | Found::Float(_) => "number",
                Found::Str(_) => "string",
                Found::Array => "array",
                Found::Object => "object",
            };
            RecordError::new("wrong_type", format!("the value is JSON {kind}, expected an object"))
        } else {
            wrong(self.path, "an object", found)
        };
        self.ctx.fail(error)
    }
}

impl<'de> Visitor<'de> for StructSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let fields = &self.plan.fields;
        let mut seen = Seen::new(fields.len());
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let Some(i) = self.plan.index(key.as_ref()) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let field = &fields[i];
            if seen.get(i) {
                return Err(self.ctx.fail(RecordError::new(
                    "wrong_type",
                    format!("{}: the key appears twice in the object", field.path),
                )));
            }
            seen.set(i);
            if field.from_metadata {
                map.next_value::<IgnoredAny>()?;
                self.columns[i].push_null();
                continue;
            }
            map.next_value_seed(ValueSeed {
                ty: &field.ty,
                required: field.required,
                required_message: RequiredMessage::Field,
                column: &mut self.columns[i],
                ctx: self.ctx,
                path: PathRef::Field(&field.path),
            })?;
        }
        for (i, field) in fields.iter().enumerate() {
            if !seen.get(i) {
                if field.required && !field.from_metadata {
                    return Err(self.ctx.fail(RecordError::new(
                        "missing_field",
                        format!("required field {} is missing or null", field.path),
                    )));
                }
                self.columns[i].push_null();
            }
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.not_an_object(Found::Null))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        Err(self.not_an_object(Found::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        Err(self.not_an_object(Found::Int(v.into())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        Err(self.not_an_object(Found::Int(v.into())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        Err(self.not_an_object(Found::Float(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        Err(self.not_an_object(Found::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_an_object(Found::Array))
    }
}

/// How a null in a required position is reported.
#[derive(Clone, Copy)]
enum RequiredMessage {
    Field,
    Element,
    Value,
}

/// An object key, borrowed from the input unless it had escapes (serde's own `Cow<str>`
/// always allocates).
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Which fields of an object were given: a bit mask (no allocation) for up to 128 fields.
enum Seen {
    Bits(u128),
    Many(Vec<bool>),
}

impl Seen {
    fn new(n: usize) -> Self {
        if n <= 128 { Seen::Bits(0) } else { Seen::Many(vec![false; n]) }
    }
    fn get(&self, i: usize) -> bool {
        match self {
            Seen::Bits(b) => b & (1u128 << i) != 0,
            Seen::Many(v) => v[i],
        }
    }
    fn set(&mut self, i: usize) {
        match self {
            Seen::Bits(b) => *b |= 1u128 << i,
            Seen::Many(v) => v[i] = true,
        }
    }
}

/// One value into one column.
struct ValueSeed<'a, 'o> {
    ty: &'a TypePlan,
    required: bool,
    required_message: RequiredMessage,
    column: &'a mut Column,
    ctx: &'a mut Ctx<'o>,
    path: PathRef<'a>,
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
                .map_err(|m| RecordError::new("out_of_range", format!("{}: {m}", self.path))),
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
            return Err(self.ctx.fail(RecordError::new("missing_field", message)));
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
                    .map_err(|m| RecordError::new("out_of_range", format!("{}: {m}", self.path)))
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
                .map_err(|m| RecordError::new("out_of_range", format!("{path}: {m}"))),
            PrimitiveType::Binary | PrimitiveType::Fixed(_) => {
                match base64::engine::general_purpose::STANDARD.decode(v) {
                    Err(e) => Err(RecordError::new("wrong_type", format!("{path}: not base64: {e}"))),
                    Ok(bytes) => match p {
                        PrimitiveType::Fixed(len) if bytes.len() as u64 != *len => Err(RecordError::new(
                            "out_of_range",
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
                .map_err(|e| RecordError::new("wrong_type", format!("{path}: {v:?} is not a UUID: {e}"))),
            PrimitiveType::Date => match NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d") {
                Ok(date) => {
                    let days = date.signed_duration_since(NaiveDate::default()).num_days();
                    i32::try_from(days).map(|d| self.column.push_i32(d)).map_err(|_| out_of_range(path, v, "date"))
                }
                Err(e) => Err(RecordError::new("wrong_type", format!("{path}: {v:?} is not a date (YYYY-MM-DD): {e}"))),
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
                Err(e) => {
                    Err(RecordError::new("wrong_type", format!("{path}: {v:?} is not a time (HH:MM:SS[.ffffff]): {e}")))
                }
            },
            PrimitiveType::Timestamp | PrimitiveType::Timestamptz => match parse_timestamp_micros(v.trim()) {
                Some(us) => {
                    self.column.push_i64(us);
                    Ok(())
                }
                None => Err(RecordError::new("wrong_type", format!("{path}: {v:?} is not an ISO-8601 timestamp"))),
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
                "wrong_type",
                format!("{key_path}: map keys of type {other} are not supported"),
            ));
        }
    }
    Ok(())
}
