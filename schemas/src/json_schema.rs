//! Columns of a JSON pipeline from a JSON Schema document (draft 7 / 2020-12 subset) instead of
//! declaring them one by one.
//!
//! `string` → string (`format`: `date-time` → timestamptz, `date` → date, `time` → time,
//! `uuid` → uuid; `contentEncoding: base64` → binary); `integer` → long; `number` → double;
//! `boolean`; `array` → list of `items`; `object` with `properties` → struct; `object` with
//! only `additionalProperties` → map<string, …>. `"type": ["null", T]` is T, optional; names in
//! `required` are required. `$ref`s to `#/definitions/…` or `#/$defs/…` are followed.

use serde_json::Value;

use crate::declare::FieldDecl;
use crate::{Error, Result};

/// The top-level properties of an object schema as declared columns.
pub fn decls_from_json_schema(document: &Value) -> Result<Vec<FieldDecl>> {
    let root = Resolver { document };
    let object = root.resolve(document, "")?;
    let properties = object
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::Schema("the JSON Schema has no top-level \"properties\"".into()))?;
    let required = required_names(object);
    properties
        .iter()
        .map(|(name, schema)| {
            let (type_name, nullable) = root.type_of(schema, name, 0)?;
            Ok(FieldDecl {
                name: name.clone(),
                type_name,
                required: required.contains(&name.as_str()) && !nullable,
                doc: schema.get("description").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

fn required_names(object: &Value) -> Vec<&str> {
    object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

struct Resolver<'a> {
    document: &'a Value,
}

impl<'a> Resolver<'a> {
    fn resolve(&self, schema: &'a Value, path: &str) -> Result<&'a Value> {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else { return Ok(schema) };
        let pointer = reference.strip_prefix('#').ok_or_else(|| {
            Error::Schema(format!("{path}: only local $refs (\"#/…\") are supported, not {reference}"))
        })?;
        self.document.pointer(pointer).ok_or_else(|| Error::Schema(format!("{path}: $ref {reference} points nowhere")))
    }

    /// The declared type text and whether null is allowed.
    fn type_of(&self, schema: &'a Value, path: &str, depth: usize) -> Result<(String, bool)> {
        if depth > 32 {
            return Err(Error::Schema(format!("{path}: the schema nests too deep (recursive $ref?)")));
        }
        let schema = self.resolve(schema, path)?;
        let (kind, nullable) = match schema.get("type") {
            Some(Value::String(t)) => (t.as_str(), false),
            Some(Value::Array(types)) => {
                let non_null: Vec<&str> = types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
                match non_null.as_slice() {
                    [one] => (*one, non_null.len() < types.len()),
                    _ => return Err(Error::Schema(format!("{path}: a field must have one type besides null"))),
                }
            }
            _ => return Err(Error::Schema(format!("{path}: no \"type\" (oneOf/anyOf are not supported)"))),
        };
        let format = schema.get("format").and_then(Value::as_str);
        let text = match kind {
            "string" if schema.get("contentEncoding").and_then(Value::as_str) == Some("base64") => "binary".into(),
            "string" => match format {
                Some("date-time") => "timestamptz".into(),
                Some("date") => "date".into(),
                Some("time") => "time".into(),
                Some("uuid") => "uuid".into(),
                _ => "string".into(),
            },
            "integer" => "long".into(),
            "number" => "double".into(),
            "boolean" => "boolean".into(),
            "array" => {
                let items =
                    schema.get("items").ok_or_else(|| Error::Schema(format!("{path}: an array needs \"items\"")))?;
                format!("list<{}>", self.type_of(items, &format!("{path}[]"), depth + 1)?.0)
            }
            "object" => match schema.get("properties").and_then(Value::as_object) {
                Some(properties) => {
                    let required = required_names(schema);
                    let fields = properties
                        .iter()
                        .map(|(name, s)| {
                            let (t, null) = self.type_of(s, &format!("{path}.{name}"), depth + 1)?;
                            let not_null = if required.contains(&name.as_str()) && !null { " not null" } else { "" };
                            Ok(format!("{name}: {t}{not_null}"))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    format!("struct<{}>", fields.join(", "))
                }
                None => match schema.get("additionalProperties") {
                    Some(values @ Value::Object(_)) => {
                        format!("map<string, {}>", self.type_of(values, &format!("{path}{{}}"), depth + 1)?.0)
                    }
                    _ => {
                        return Err(Error::Schema(format!(
                            "{path}: an object needs properties or additionalProperties"
                        )));
                    }
                },
            },
            other => return Err(Error::Schema(format!("{path}: JSON Schema type {other:?} cannot be a column"))),
        };
        Ok((text, nullable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declare::schema_from_decls;

    #[test]
    fn maps_a_json_schema_to_columns() {
        let doc = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["id", "ts"],
            "properties": {
                "id": {"type": "integer"},
                "ts": {"type": "string", "format": "date-time"},
                "user": {"type": ["null", "string"], "description": "who"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "geo": {"$ref": "#/$defs/geo"},
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "raw": {"type": "string", "contentEncoding": "base64"}
            },
            "$defs": {"geo": {"type": "object", "required": ["lat"], "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}}}}
        });
        let decls = decls_from_json_schema(&doc).expect("maps");
        let shown: Vec<String> = decls.iter().map(|d| format!("{}:{}:{}", d.name, d.type_name, d.required)).collect();
        assert_eq!(
            shown,
            vec![
                "id:long:true",
                "ts:timestamptz:true",
                "user:string:false",
                "tags:list<string>:false",
                "geo:struct<lat: double not null, lon: double>:false",
                "counts:map<string, long>:false",
                "raw:binary:false",
            ]
        );
        schema_from_decls(&decls).expect("a valid table schema");
    }

    #[test]
    fn unsupported_shapes_name_the_field() {
        let doc = serde_json::json!({"type": "object", "properties": {"v": {"oneOf": [{"type": "string"}]}}});
        let err = decls_from_json_schema(&doc).expect_err("refused");
        assert!(err.to_string().contains('v'), "{err}");
    }
}
