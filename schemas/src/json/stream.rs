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
use crate::error::Reason;

mod report;
mod scan;
mod tokens;
mod value;

use report::{Found, PathRef, out_of_range, wrong};
use value::ValueSeed;

/// How one struct's JSON object reaches its columns.
#[derive(Debug)]
pub(crate) struct StructPlan {
    fields: Vec<FieldPlan>,
    /// Field names, for structs small enough that comparing names beats hashing them.
    names: Vec<String>,
    /// Each name as a JSON key in quotes with its colon (`"name":`), for the scanner to match
    /// in place (`None`: the name would need escapes).
    quoted: Vec<Option<tokens::QuotedKey>>,
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
        let names: Vec<String> = ty.fields().iter().map(|f| f.name.clone()).collect();
        let quoted = names
            .iter()
            .map(|n| {
                let plain = n.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
                plain.then(|| tokens::QuotedKey::new([b"\"", n.as_bytes(), b"\":"].concat()))
            })
            .collect();
        StructPlan { fields, names, quoted, by_name }
    }

    /// The field named `key`, tried first at `expected`: producers write an object's keys in
    /// the same order record after record, so one comparison usually finds it.
    fn index(&self, key: &[u8], expected: usize) -> Option<usize> {
        if self.names.get(expected).is_some_and(|name| name.as_bytes() == key) {
            return Some(expected);
        }
        if self.names.len() <= LINEAR_LOOKUP {
            self.names.iter().position(|n| n.as_bytes() == key)
        } else {
            std::str::from_utf8(key).ok().and_then(|key| self.by_name.get(key).copied())
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
/// The scanner tries first; what it gives up on is decoded again from scratch by serde.
pub(crate) fn decode_record(
    plan: &StructPlan,
    bytes: &[u8],
    columns: &mut [Column],
    options: &JsonOptions,
) -> std::result::Result<(), RecordError> {
    let rows = columns.first().map_or(0, Column::len);
    if scan::record(plan, bytes, columns, options).is_ok() {
        return Ok(());
    }
    columns.iter_mut().for_each(|c| c.truncate(rows));
    decode_record_by_serde(plan, bytes, columns, options)
}

/// [`decode_record`] without the scanner.
pub(crate) fn decode_record_by_serde(
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
            .unwrap_or_else(|| RecordError::new(Reason::NotJson, format!("the value is not valid JSON: {e}")))),
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
            RecordError::new(Reason::WrongType, format!("the value is JSON {kind}, expected an object"))
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
        let mut expected = 0;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let Some(i) = self.plan.index(key.as_bytes(), expected) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            expected = i + 1;
            let field = &fields[i];
            if seen.get(i) {
                return Err(self.ctx.fail(RecordError::new(
                    Reason::WrongType,
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
                        Reason::MissingField,
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

/// Which fields of an object were given: a bit mask (no allocation) for up to 64 fields, a
/// vector beyond. (A third variant, a `u128` for up to 128, made the scanner 5–10% slower on
/// narrow objects: the match in the per-field loop grew.)
enum Seen {
    Bits(u64),
    Many(Vec<bool>),
}

impl Seen {
    fn new(n: usize) -> Self {
        if n <= 64 { Seen::Bits(0) } else { Seen::Many(vec![false; n]) }
    }
    #[inline]
    fn get(&self, i: usize) -> bool {
        match self {
            Seen::Bits(b) => b & (1u64 << i) != 0,
            Seen::Many(v) => v[i],
        }
    }
    #[inline]
    fn set(&mut self, i: usize) {
        match self {
            Seen::Bits(b) => *b |= 1u64 << i,
            Seen::Many(v) => v[i] = true,
        }
    }
}
