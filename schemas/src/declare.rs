//! Schemas declared in config: a list of fields whose `type` is written the way Spark and
//! Iceberg print types — `long`, `decimal(10,2)`, `timestamptz`, `list<string>`,
//! `map<int, string>`, `struct<a: long, b: string>`. Field ids are assigned depth-first.

use iceberg::spec::{ListType, MapType, NestedField, PrimitiveType, Schema, StructType, Type};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One top-level column as declared in config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldDecl {
    /// Column name; JSON records are matched by this name.
    pub name: String,
    /// Iceberg type, e.g. `long`, `string`, `timestamptz`, `decimal(12,2)`, `list<string>`,
    /// `map<string, long>`, `struct<lat: double, lon: double>`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// A record without this field (or with null) is a bad record when true.
    #[serde(default)]
    pub required: bool,
    /// Column documentation stored in the table schema.
    #[serde(default)]
    pub doc: Option<String>,
}

/// Column names the Iceberg spec reserves for metadata columns; engines shadow a table column
/// of the same name, so a table must not have one.
pub const RESERVED_NAMES: &[&str] = &[
    "_file",
    "_pos",
    "_deleted",
    "_spec_id",
    "_partition",
    "_change_type",
    "_change_ordinal",
    "_commit_snapshot_id",
    "_row_id",
    "_last_updated_sequence_number",
];

/// Builds an Iceberg schema from declared fields. Nested fields are optional; ids are 1..n.
pub fn schema_from_decls(fields: &[FieldDecl]) -> Result<Schema> {
    if fields.is_empty() {
        return Err(Error::Schema("the schema declares no field".into()));
    }
    if let Some(reserved) = fields.iter().find(|f| RESERVED_NAMES.contains(&f.name.as_str())) {
        return Err(Error::Schema(format!(
            "column name {:?} is reserved by Iceberg for a metadata column; choose another (e.g. kafka{})",
            reserved.name, reserved.name
        )));
    }
    let mut ids = IdAssigner(0);
    let mut out = Vec::with_capacity(fields.len());
    let mut seen = std::collections::HashSet::new();
    for decl in fields {
        if !seen.insert(decl.name.as_str()) {
            return Err(Error::Schema(format!("field {:?} is declared twice", decl.name)));
        }
        let id = ids.next();
        let ty =
            parse_type(&decl.type_name, &mut ids).map_err(|e| Error::Schema(format!("field {:?}: {e}", decl.name)))?;
        let mut field = if decl.required {
            NestedField::required(id, &decl.name, ty)
        } else {
            NestedField::optional(id, &decl.name, ty)
        };
        if let Some(doc) = &decl.doc {
            field = field.with_doc(doc);
        }
        out.push(field.into());
    }
    Schema::builder()
        .with_fields(out)
        .build()
        .map_err(|e| Error::Iceberg { context: "build declared schema".into(), source: Box::new(e) })
}

struct IdAssigner(i32);
impl IdAssigner {
    fn next(&mut self) -> i32 {
        self.0 += 1;
        self.0
    }
}

/// Parses a type string, assigning ids to nested fields.
fn parse_type(text: &str, ids: &mut IdAssigner) -> std::result::Result<Type, String> {
    let mut parser = Parser { text: text.as_bytes(), pos: 0 };
    let ty = parser.parse(ids)?;
    parser.skip_ws();
    if parser.pos != parser.text.len() {
        return Err(format!("unexpected text after the type in {text:?}"));
    }
    Ok(ty)
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.text.len() && self.text[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.text.len() && (self.text[self.pos].is_ascii_alphanumeric() || self.text[self.pos] == b'_')
        {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.text[start..self.pos]).to_string()
    }

    fn eat(&mut self, c: u8) -> std::result::Result<(), String> {
        self.skip_ws();
        if self.text.get(self.pos) == Some(&c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "expected '{}' at position {} of {:?}",
                c as char,
                self.pos,
                String::from_utf8_lossy(self.text)
            ))
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.get(self.pos).copied()
    }

    fn number(&mut self) -> std::result::Result<u32, String> {
        let w = self.word();
        w.parse().map_err(|_| format!("expected a number, found {w:?}"))
    }

    fn parse(&mut self, ids: &mut IdAssigner) -> std::result::Result<Type, String> {
        let name = self.word().to_ascii_lowercase();
        let primitive = |p| Ok(Type::Primitive(p));
        match name.as_str() {
            "boolean" | "bool" => primitive(PrimitiveType::Boolean),
            "int" | "integer" => primitive(PrimitiveType::Int),
            "long" | "bigint" => primitive(PrimitiveType::Long),
            "float" => primitive(PrimitiveType::Float),
            "double" => primitive(PrimitiveType::Double),
            "date" => primitive(PrimitiveType::Date),
            "time" => primitive(PrimitiveType::Time),
            "timestamp" => primitive(PrimitiveType::Timestamp),
            "timestamptz" => primitive(PrimitiveType::Timestamptz),
            "string" => primitive(PrimitiveType::String),
            "uuid" => primitive(PrimitiveType::Uuid),
            "binary" => primitive(PrimitiveType::Binary),
            "fixed" => {
                self.eat(b'[').or_else(|_| self.eat(b'('))?;
                let len = self.number()?;
                self.eat(b']').or_else(|_| self.eat(b')'))?;
                primitive(PrimitiveType::Fixed(u64::from(len)))
            }
            "decimal" => {
                self.eat(b'(')?;
                let precision = self.number()?;
                self.eat(b',')?;
                let scale = self.number()?;
                self.eat(b')')?;
                if precision == 0 || precision > 38 || scale > precision {
                    return Err(format!(
                        "decimal({precision},{scale}): precision must be 1..=38 and scale <= precision"
                    ));
                }
                primitive(PrimitiveType::Decimal { precision, scale })
            }
            "list" | "array" => {
                self.eat(b'<')?;
                let id = ids.next();
                let element = self.parse(ids)?;
                self.eat(b'>')?;
                Ok(Type::List(ListType::new(NestedField::list_element(id, element, false).into())))
            }
            "map" => {
                self.eat(b'<')?;
                let key_id = ids.next();
                let value_id = ids.next();
                let key = self.parse(ids)?;
                if !matches!(key, Type::Primitive(_)) {
                    return Err("map keys must be a primitive type".into());
                }
                self.eat(b',')?;
                let value = self.parse(ids)?;
                self.eat(b'>')?;
                Ok(Type::Map(MapType::new(
                    NestedField::map_key_element(key_id, key).into(),
                    NestedField::map_value_element(value_id, value, false).into(),
                )))
            }
            "struct" => {
                self.eat(b'<')?;
                let mut fields = Vec::new();
                loop {
                    let field_name = self.word();
                    if field_name.is_empty() {
                        return Err("expected a field name inside struct<...>".into());
                    }
                    self.eat(b':')?;
                    let id = ids.next();
                    let mut ty_text_required = false;
                    let ty = self.parse(ids)?;
                    // `name: type not null` makes a nested field required.
                    let save = self.pos;
                    if self.word().eq_ignore_ascii_case("not") && self.word().eq_ignore_ascii_case("null") {
                        ty_text_required = true;
                    } else {
                        self.pos = save;
                    }
                    let field = if ty_text_required {
                        NestedField::required(id, &field_name, ty)
                    } else {
                        NestedField::optional(id, &field_name, ty)
                    };
                    fields.push(field.into());
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'>') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err("expected ',' or '>' in struct<...>".into()),
                    }
                }
                Ok(Type::Struct(StructType::new(fields)))
            }
            "" => Err("missing type".into()),
            other => Err(format!(
                "unknown type {other:?}; use boolean, int, long, float, double, decimal(p,s), date, time, \
                 timestamp, timestamptz, string, uuid, binary, fixed[n], list<T>, map<K,V> or struct<name: T, ...>"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, ty: &str, required: bool) -> FieldDecl {
        FieldDecl { name: name.into(), type_name: ty.into(), required, doc: None }
    }

    #[test]
    fn assigns_ids_depth_first_through_nested_types() {
        let schema = schema_from_decls(&[
            decl("id", "long", true),
            decl("tags", "list<string>", false),
            decl("attrs", "map<int, string>", false),
            decl("geo", "struct<lat: double not null, lon: double>", false),
            decl("amount", "decimal(12, 2)", false),
        ])
        .expect("valid");
        assert_eq!(schema.field_by_name("id").map(|f| f.id), Some(1));
        assert_eq!(schema.field_by_name("tags").map(|f| f.id), Some(2));
        assert_eq!(schema.field_by_name("tags.element").map(|f| f.id), Some(3));
        assert_eq!(schema.field_by_name("attrs").map(|f| f.id), Some(4));
        assert_eq!(schema.field_by_name("geo.lat").map(|f| (f.id, f.required)), Some((8, true)));
        assert_eq!(schema.field_by_name("geo.lon").map(|f| (f.id, f.required)), Some((9, false)));
        assert_eq!(schema.highest_field_id(), 10);
    }

    #[test]
    fn rejects_bad_declarations_with_the_field_named() {
        let err = schema_from_decls(&[decl("x", "strin", false)]).expect_err("bad type");
        assert!(err.to_string().contains("\"x\""), "{err}");
        assert!(schema_from_decls(&[decl("x", "decimal(40,2)", false)]).is_err());
        assert!(schema_from_decls(&[decl("x", "map<struct<a: int>, int>", false)]).is_err());
        assert!(schema_from_decls(&[decl("x", "int", false), decl("x", "long", false)]).is_err());
        assert!(schema_from_decls(&[decl("x", "list<int", false)]).is_err());
        let reserved = schema_from_decls(&[decl("_partition", "int", false)]).expect_err("reserved");
        assert!(reserved.to_string().contains("reserved"), "{reserved}");
    }
}
