//! Probing a JSON record for what the table lacks, without decoding it: known primitive values
//! are skipped after a syntax check; only values under new keys are parsed (see [`super`]).

use std::collections::HashMap;
use std::fmt;

use iceberg::spec::{PrimitiveType, StructType, Type};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{NewShape, Step, infer};

/// Finds what records have that a table lacks (see the module docs).
#[derive(Debug)]
pub struct ShapeProbe {
    /// The table's top level (a `Known::Struct`).
    root: Known,
}

#[derive(Debug)]
struct KnownStruct {
    names: Vec<String>,
    kinds: Vec<Known>,
    by_name: HashMap<String, usize>,
}

#[derive(Debug)]
enum Known {
    /// Skipped (metadata columns, and values whose type cannot need a change).
    Skip,
    Int,
    Struct(KnownStruct),
    List(Box<Known>),
    Map(Box<Known>),
}

impl KnownStruct {
    fn new(ty: &StructType, skip: &[String]) -> Self {
        let names: Vec<String> = ty.fields().iter().map(|f| f.name.clone()).collect();
        let kinds = ty
            .fields()
            .iter()
            .map(|f| if skip.contains(&f.name) { Known::Skip } else { Known::of(&f.field_type) })
            .collect();
        let by_name = names.iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        KnownStruct { names, kinds, by_name }
    }

    /// The field named `key`, tried first at `expected` (producers keep their key order).
    fn index(&self, key: &str, expected: usize) -> Option<usize> {
        if self.names.get(expected).is_some_and(|n| n == key) {
            return Some(expected);
        }
        self.by_name.get(key).copied()
    }
}

impl Known {
    fn of(ty: &Type) -> Known {
        match ty {
            Type::Primitive(PrimitiveType::Int) => Known::Int,
            Type::Primitive(_) => Known::Skip,
            Type::Struct(s) => Known::Struct(KnownStruct::new(s, &[])),
            Type::List(l) => Known::List(Box::new(Known::of(&l.element_field.field_type))),
            Type::Map(m) => Known::Map(Box::new(Known::of(&m.value_field.field_type))),
        }
    }
}

impl ShapeProbe {
    /// A probe for a table of `table`'s columns; `metadata_fields` (Kafka metadata columns) are
    /// never taken from the payload.
    pub fn new(table: &StructType, metadata_fields: &[String]) -> Self {
        ShapeProbe { root: Known::Struct(KnownStruct::new(table, metadata_fields)) }
    }

    /// Adds to `found` what `payload` has that the table lacks; true if it added anything. A
    /// payload that is not a JSON object adds nothing (the decoder dead-letters it).
    pub fn probe(&self, payload: &[u8], found: &mut NewShape) -> bool {
        let before = (found.additions.len(), found.widen_to_long.len());
        let mut probing = Probing { root: &self.root, path: Vec::new(), found: NewShape::default() };
        let mut de = serde_json::Deserializer::from_slice(crate::json::unframed(payload));
        let complete = KnownSeed { known: &self.root, probing: &mut probing }.deserialize(&mut de).is_ok();
        if complete && de.end().is_ok() {
            for (parent, name, ty) in probing.found.additions {
                found.add(&parent, &name, ty);
            }
            for path in probing.found.widen_to_long {
                found.widen(path);
            }
        }
        (found.additions.len(), found.widen_to_long.len()) != before
    }
}

/// A step by position, turned into names only when something is found.
#[derive(Debug, Clone, Copy)]
enum At {
    Field(usize),
    Element,
    Value,
}

struct Probing<'a> {
    root: &'a Known,
    path: Vec<At>,
    found: NewShape,
}

impl Probing<'_> {
    fn named_path(&self) -> Vec<Step> {
        let mut known = self.root;
        let mut steps = Vec::with_capacity(self.path.len());
        for at in &self.path {
            match (at, known) {
                (At::Field(i), Known::Struct(s)) => {
                    steps.push(Step::Field(s.names[*i].clone()));
                    known = &s.kinds[*i];
                }
                (At::Element, Known::List(element)) => {
                    steps.push(Step::Element);
                    known = element;
                }
                (At::Value, Known::Map(value)) => {
                    steps.push(Step::Value);
                    known = value;
                }
                _ => break, // cannot happen: the path was made walking the same plan
            }
        }
        steps
    }
}

struct KnownSeed<'a, 'p> {
    known: &'a Known,
    probing: &'p mut Probing<'a>,
}

impl<'de> DeserializeSeed<'de> for KnownSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.known {
            Known::Skip => d.deserialize_ignored_any(IgnoredAny).map(|_| ()),
            _ => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for KnownSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        if matches!(self.known, Known::Int) && i32::try_from(v).is_err() {
            let path = self.probing.named_path();
            self.probing.found.widen(path);
        }
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        if matches!(self.known, Known::Int) && i32::try_from(v).is_err() {
            let path = self.probing.named_path();
            self.probing.found.widen(path);
        }
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Known::List(element) = self.known else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        self.probing.path.push(At::Element);
        while seq.next_element_seed(KnownSeed { known: element, probing: &mut *self.probing })?.is_some() {}
        self.probing.path.pop();
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match self.known {
            Known::Struct(s) => {
                let mut expected = 0;
                while let Some(key) = map.next_key_seed(KeySeed)? {
                    let Some(i) = s.index(&key, expected) else {
                        let value: Value = map.next_value()?;
                        if let Some(ty) = infer(&value) {
                            let parent = self.probing.named_path();
                            self.probing.found.add(&parent, &key, ty);
                        }
                        continue;
                    };
                    expected = i + 1;
                    self.probing.path.push(At::Field(i));
                    map.next_value_seed(KnownSeed { known: &s.kinds[i], probing: &mut *self.probing })?;
                    self.probing.path.pop();
                }
            }
            Known::Map(value) => {
                self.probing.path.push(At::Value);
                while map.next_key::<IgnoredAny>()?.is_some() {
                    map.next_value_seed(KnownSeed { known: value, probing: &mut *self.probing })?;
                }
                self.probing.path.pop();
            }
            _ => while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {},
        }
        Ok(())
    }
}

/// The text of one top-level field of a JSON object (framed or not): a string as it is, a
/// number or boolean as JSON writes it; `None` when the payload is not an object, lacks the
/// field, or holds another kind of value there. Other values are only syntax-checked.
pub fn field_text(payload: &[u8], field: &str) -> Option<String> {
    let mut de = serde_json::Deserializer::from_slice(crate::json::unframed(payload));
    de.deserialize_map(FieldSeed { field }).ok().flatten()
}

struct FieldSeed<'a> {
    field: &'a str,
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if found.is_none() && key == self.field {
                found = match map.next_value::<Value>()? {
                    Value::String(s) => Some(s),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// An object key, borrowed from the payload when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_string()))
    }
}
