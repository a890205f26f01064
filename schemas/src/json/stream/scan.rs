//! The JSON decoder's first try: a hand-written scanner for the shapes nearly every record
//! has (objects with known keys, lists, strings without escapes, plain integers, short
//! decimals, `true`/`false`/`null`), pushing values through the same [`ValueSeed`] visitors as
//! the serde path. A value of any other shape (a string with escapes, a map, a long number) is
//! handed to serde_json on that value's bytes alone. Whatever the scanner is not sure of (a
//! syntax error, a value the visitors refuse, a repeated key, a key with escapes, a missing
//! required field) makes it give up; the caller rolls the row back and decodes the record again
//! on the serde path. So every error, and every edge case, is the serde path's: a record the
//! scanner accepts is one the serde path accepts, with the same row.
//!
//! The time went in serde_json's per-string work (finding the end, checking UTF-8 string by
//! string, the visitor plumbing for every key). Here the record's UTF-8 is checked once, the
//! key expected next is matched in place, a string is one pass over a byte table, and plain
//! integers and short decimals are computed where that gives serde_json's value bit for bit.

use iceberg::spec::PrimitiveType;
use serde::de::{DeserializeSeed, Visitor};

use super::tokens::{GiveUp, MAX_DEPTH, Number, Scan, Scanner};
use super::{Ctx, PathRef, RequiredMessage, Seen, StructPlan, TypePlan, ValueSeed};
use crate::columns::Column;
use crate::json::{JsonOptions, parse_timestamp_micros};

/// Decodes one record into `columns`, or gives up (leaving a partial row to roll back).
pub(super) fn record(plan: &StructPlan, bytes: &[u8], columns: &mut [Column], options: &JsonOptions) -> Scan<()> {
    // One UTF-8 check of the whole record: every string in it is then a slice of `text`.
    let text = simdutf8::basic::from_utf8(bytes).map_err(|_| GiveUp)?;
    let mut ctx = Ctx { options, error: None };
    let mut scanner = Scanner { text, bytes, pos: 0 };
    scanner.skip_ws();
    if scanner.peek() != Some(b'{') {
        return Err(GiveUp);
    }
    scanner.object(plan, columns, &mut ctx, 0)?;
    scanner.skip_ws();
    if scanner.pos == bytes.len() { Ok(()) } else { Err(GiveUp) }
}

impl Scanner<'_> {
    /// The object at `pos` into the columns of `plan`, as `StructSeed::visit_map` does it.
    fn object(&mut self, plan: &StructPlan, columns: &mut [Column], ctx: &mut Ctx<'_>, depth: usize) -> Scan<()> {
        self.pos += 1; // the `{`
        self.skip_ws();
        let mut seen = Seen::new(plan.fields.len());
        // Fields given; when every one was, no field is missing (the common case).
        let mut given = 0;
        let mut expected = 0;
        let mut done = self.peek() == Some(b'}');
        if done {
            self.pos += 1;
        }
        while !done {
            if self.peek() != Some(b'"') {
                return Err(GiveUp);
            }
            let index = match plan.quoted.get(expected).and_then(Option::as_ref) {
                // The key producers write next, and its colon, matched in place.
                Some(quoted) if quoted.starts(&self.bytes[self.pos..]) => {
                    self.pos += quoted.len();
                    Some(expected)
                }
                _ => {
                    let key = self.string()?;
                    if key.escaped {
                        return Err(GiveUp);
                    }
                    self.skip_ws();
                    self.expect(b':')?;
                    plan.index(&self.bytes[key.start..key.end], expected)
                }
            };
            self.skip_ws();
            match index {
                None => self.skip_value(depth + 1)?,
                Some(i) => {
                    expected = i + 1;
                    if seen.get(i) {
                        return Err(GiveUp);
                    }
                    seen.set(i);
                    given += 1;
                    let field = &plan.fields[i];
                    if field.from_metadata {
                        self.skip_value(depth + 1)?;
                        columns[i].push_null();
                    } else if !self.plain(&field.ty, &mut columns[i])? {
                        let seed = ValueSeed {
                            ty: &field.ty,
                            required: field.required,
                            required_message: RequiredMessage::Field,
                            column: &mut columns[i],
                            ctx: &mut *ctx,
                            path: PathRef::Field(&field.path),
                        };
                        self.value(seed, depth + 1)?;
                    }
                }
            }
            done = self.next_member(b'}')?;
        }
        if given < plan.fields.len() {
            for (i, field) in plan.fields.iter().enumerate() {
                if !seen.get(i) {
                    if field.required && !field.from_metadata {
                        return Err(GiveUp);
                    }
                    columns[i].push_null();
                }
            }
        }
        Ok(())
    }

    /// One value into its column.
    fn value(&mut self, seed: ValueSeed<'_, '_>, depth: usize) -> Scan<()> {
        let start = self.pos;
        match self.peek().ok_or(GiveUp)? {
            b'"' => {
                let span = self.string()?;
                if span.escaped {
                    return by_serde(seed, &self.bytes[start..self.pos]);
                }
                let text = self.text(&span)?;
                seed.visit_str::<serde_json::Error>(text).map_err(|_| GiveUp)
            }
            b'n' => {
                self.literal(b"null")?;
                seed.visit_unit::<serde_json::Error>().map_err(|_| GiveUp)
            }
            b't' => {
                self.literal(b"true")?;
                seed.visit_bool::<serde_json::Error>(true).map_err(|_| GiveUp)
            }
            b'f' => {
                self.literal(b"false")?;
                seed.visit_bool::<serde_json::Error>(false).map_err(|_| GiveUp)
            }
            b'{' if depth < MAX_DEPTH && matches!(seed.ty, TypePlan::Struct(_)) => {
                let TypePlan::Struct(plan) = seed.ty else { return Err(GiveUp) };
                let children = seed.column.struct_fields().ok_or(GiveUp)?;
                self.object(plan, children, seed.ctx, depth)?;
                seed.column.end_struct();
                Ok(())
            }
            b'[' if depth < MAX_DEPTH && matches!(seed.ty, TypePlan::List { .. }) => {
                let TypePlan::List { element, element_required } = seed.ty else { return Err(GiveUp) };
                let list_path = seed.path.base();
                let elements = seed.column.list_element().ok_or(GiveUp)?;
                self.pos += 1; // the `[`
                self.skip_ws();
                let mut done = self.peek() == Some(b']');
                if done {
                    self.pos += 1;
                }
                let mut i = 0;
                while !done {
                    if !self.plain(element, elements)? {
                        let element_seed = ValueSeed {
                            ty: element,
                            required: *element_required,
                            required_message: RequiredMessage::Element,
                            column: &mut *elements,
                            ctx: &mut *seed.ctx,
                            path: PathRef::Element(&list_path, i),
                        };
                        self.value(element_seed, depth + 1)?;
                    }
                    i += 1;
                    done = self.next_member(b']')?;
                }
                seed.column.end_nested();
                Ok(())
            }
            b'{' | b'[' => {
                self.skip_value(depth)?;
                by_serde(seed, &self.bytes[start..self.pos])
            }
            _ => match self.number()? {
                // serde_json visits non-negative integers as u64, negative ones as i64.
                Number::Int(n) if n >= 0 => seed.visit_u64::<serde_json::Error>(n as u64).map_err(|_| GiveUp),
                Number::Int(n) => seed.visit_i64::<serde_json::Error>(n).map_err(|_| GiveUp),
                Number::Float(x) => seed.visit_f64::<serde_json::Error>(x).map_err(|_| GiveUp),
                Number::Other => by_serde(seed, &self.bytes[start..self.pos]),
            },
        }
    }
}

impl Scanner<'_> {
    /// The everyday value of a string, timestamp, long, int, double or boolean column, pushed
    /// as the visitor would push it but without its dispatch (a third of the scanner's work per
    /// value went there). `false`, with `pos` unmoved, for anything else: the visitor decides.
    fn plain(&mut self, ty: &TypePlan, column: &mut Column) -> Scan<bool> {
        let TypePlan::Primitive(primitive) = ty else { return Ok(false) };
        let start = self.pos;
        let taken = match (primitive, self.peek()) {
            (PrimitiveType::String, Some(b'"')) => {
                let span = self.string()?;
                if !span.escaped {
                    column.push_bytes(&self.bytes[span.start..span.end]);
                }
                !span.escaped
            }
            (PrimitiveType::Timestamp | PrimitiveType::Timestamptz, Some(b'"')) => {
                let span = self.string()?;
                let micros = if span.escaped { None } else { parse_timestamp_micros(self.text(&span)?.trim()) };
                micros.map(|us| column.push_i64(us)).is_some()
            }
            (PrimitiveType::Long | PrimitiveType::Int | PrimitiveType::Double, Some(b'-' | b'0'..=b'9')) => {
                // Another combination (a fraction for a long, a long number) is the visitor's.
                match (primitive, self.number()?) {
                    (PrimitiveType::Long, Number::Int(n)) => {
                        column.push_i64(n);
                        true
                    }
                    (PrimitiveType::Int, Number::Int(n)) if i32::try_from(n).is_ok() => {
                        column.push_i32(n as i32);
                        true
                    }
                    (PrimitiveType::Double, Number::Int(n)) => {
                        column.push_f64(n as f64);
                        true
                    }
                    (PrimitiveType::Double, Number::Float(x)) => {
                        column.push_f64(x);
                        true
                    }
                    _ => false,
                }
            }
            (PrimitiveType::Boolean, Some(b't')) => {
                self.literal(b"true")?;
                column.push_bool(true);
                true
            }
            (PrimitiveType::Boolean, Some(b'f')) => {
                self.literal(b"false")?;
                column.push_bool(false);
                true
            }
            _ => false,
        };
        if !taken {
            self.pos = start; // the visitor reads the value again
        }
        Ok(taken)
    }
}

/// One value's bytes through serde_json and the same visitor: escapes, maps, long numbers.
fn by_serde(seed: ValueSeed<'_, '_>, token: &[u8]) -> Scan<()> {
    let mut de = serde_json::Deserializer::from_slice(token);
    seed.deserialize(&mut de).map_err(|_| GiveUp)?;
    de.end().map_err(|_| GiveUp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::tests::rich_decoder;

    fn scans(json: &str) -> bool {
        let decoder = rich_decoder();
        let mut columns: Vec<Column> =
            decoder.arrow_schema.fields().iter().map(|f| Column::new(f.data_type()).expect("column")).collect();
        record(&decoder.plan, json.as_bytes(), &mut columns, &decoder.options).is_ok()
    }

    /// What the scanner takes itself (else it would be no faster): the everyday shapes, with
    /// escapes, maps and long numbers handed to serde value by value.
    #[test]
    fn the_scanner_takes_everyday_records_and_leaves_the_rest() {
        for taken in [
            r#"{"id": 1, "i": -5, "b": true, "s": "plain", "ts": "2024-01-02T03:04:05Z", "geo": {"lat": 1.5, "lon": null}}"#,
            r#" {"id":2,"s":"h\u00e9llo \"q\" /?#%","tags":["a",null],"counts":{"7":1},"zz":{"deep":[1,{"x":"é"}]}} "#,
            r#"{"s": "ünïcödé and a string longer than sixty-four bytes, which is what real events hold", "id": 3}"#,
            r#"{"id": 9223372036854775807, "d": -0, "f": 1e3, "nums": []}"#,
        ] {
            assert!(scans(taken), "{taken}");
        }
        for left in [
            r#"{"id": 1, "id": 2}"#,
            r#"{"i\u0064": 1}"#,
            r#"{"id": 1,}"#,
            r#"{"i": 1}"#,
            r#"{"id": 01}"#,
            r#"{"id": 1, "zz": nul}"#,
            "{\"id\": 1, \"s\": \"a\u{1}b\"}",
            r#"{"id": "1"}"#,
            r#"[{"id": 1}]"#,
            r#"{"id": 1} x"#,
        ] {
            assert!(!scans(left), "{left}");
        }
        let deep = format!(r#"{{"id": 1, "zz": {}1{}}}"#, "[".repeat(150), "]".repeat(150));
        assert!(!scans(&deep), "deep nesting is the serde path's to judge");
        let invalid_utf8 = [&br#"{"id": 1, "zz": ""#[..], &[0xff], br#""}"#].concat();
        let decoder = rich_decoder();
        let mut columns: Vec<Column> =
            decoder.arrow_schema.fields().iter().map(|f| Column::new(f.data_type()).expect("column")).collect();
        assert!(record(&decoder.plan, &invalid_utf8, &mut columns, &decoder.options).is_err());
    }
}
