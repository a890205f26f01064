use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Decimal128Type, Int32Type, Int64Type, TimestampMicrosecondType};

use super::*;
use crate::declare::{FieldDecl, schema_from_decls};
use crate::json::scanner_tests::{SYNTAX, mutated_records};

fn decl(name: &str, ty: &str, required: bool) -> FieldDecl {
    FieldDecl { name: name.into(), type_name: ty.into(), required, doc: None }
}

fn decoder(fields: &[FieldDecl], unit: EpochUnit) -> JsonDecoder {
    let schema = schema_from_decls(fields).expect("schema");
    JsonDecoder::new(Arc::new(schema), JsonOptions { epoch_unit: unit, ..Default::default() }).expect("decoder")
}

fn decode(d: &JsonDecoder, records: &[&str]) -> Decoded {
    d.decode(records.iter().map(|r| Some(r.as_bytes()))).expect("decode")
}

#[test]
fn decodes_every_primitive_type() {
    let d = decoder(
        &[
            decl("l", "long", true),
            decl("i", "int", false),
            decl("d", "double", false),
            decl("f", "float", false),
            decl("dec", "decimal(10,2)", false),
            decl("b", "boolean", false),
            decl("s", "string", false),
            decl("bin", "binary", false),
            decl("u", "uuid", false),
            decl("day", "date", false),
            decl("t", "time", false),
            decl("ts", "timestamp", false),
            decl("tz", "timestamptz", false),
        ],
        EpochUnit::Millis,
    );
    let out = decode(
        &d,
        &[r#"{"l": 9007199254740993, "i": -5, "d": 1.5, "f": 2.5, "dec": "123.45", "b": true, "s": "héllo",
              "bin": "AAEC", "u": "123e4567-e89b-12d3-a456-426614174000", "day": "2024-02-29",
              "t": "12:34:56.789", "ts": "2024-01-02T03:04:05.123456", "tz": "2024-01-02T03:04:05+02:00"}"#],
    );
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let b = &out.batch;
    assert_eq!(b.num_rows(), 1);
    assert_eq!(b.column(0).as_primitive::<Int64Type>().value(0), 9_007_199_254_740_993);
    assert_eq!(b.column(1).as_primitive::<Int32Type>().value(0), -5);
    assert_eq!(b.column(4).as_primitive::<Decimal128Type>().value(0), 12345);
    assert_eq!(b.column(6).as_string::<i32>().value(0), "héllo");
    assert_eq!(b.column(8).as_fixed_size_binary().value(0)[0], 0x12);
    assert_eq!(b.column(9).as_primitive::<Date32Type>().value(0), 19782);
    let ts = b.column(11).as_primitive::<TimestampMicrosecondType>().value(0);
    assert_eq!(ts, 1_704_164_645_123_456);
    let tz = b.column(12).as_primitive::<TimestampMicrosecondType>().value(0);
    assert_eq!(tz, 1_704_157_445_000_000, "offset +02:00 converted to UTC");
}

#[test]
fn epoch_numbers_follow_the_configured_unit() {
    for (unit, raw, micros) in [
        (EpochUnit::Seconds, "1700000000", 1_700_000_000_000_000i64),
        (EpochUnit::Millis, "1700000000123", 1_700_000_000_123_000),
        (EpochUnit::Micros, "1700000000123456", 1_700_000_000_123_456),
        (EpochUnit::Nanos, "1700000000123456789", 1_700_000_000_123_456),
    ] {
        let d = decoder(&[decl("ts", "timestamptz", true)], unit);
        let out = decode(&d, &[&format!(r#"{{"ts": {raw}}}"#)]);
        assert!(out.errors.is_empty(), "{unit:?}: {:?}", out.errors);
        assert_eq!(out.batch.column(0).as_primitive::<TimestampMicrosecondType>().value(0), micros, "{unit:?}");
    }
}

#[test]
fn decodes_nested_structs_lists_and_maps_with_non_string_keys() {
    let d = decoder(
        &[
            decl("id", "long", true),
            decl("geo", "struct<lat: double not null, tags: list<string>>", false),
            decl("counts", "map<int, long>", false),
            decl("names", "map<string, string>", false),
        ],
        EpochUnit::Millis,
    );
    let out = decode(
        &d,
        &[
            r#"{"id": 1, "geo": {"lat": 1.5, "tags": ["a", null, "c"]}, "counts": {"7": 70, "8": 80}, "names": {"x": "y"}}"#,
            r#"{"id": 2}"#,
            r#"{"id": 3, "geo": {"tags": []}}"#,
        ],
    );
    assert_eq!(out.rows, vec![0, 1]);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].0, 2);
    assert!(out.errors[0].1.message.contains("geo.lat"), "{}", out.errors[0].1);
    let geo = out.batch.column(1).as_struct();
    assert!(geo.is_valid(0) && geo.is_null(1));
    let tags = geo.column(1).as_list::<i32>();
    assert_eq!(tags.value(0).len(), 3);
    let counts = out.batch.column(2).as_map();
    assert_eq!(counts.value(0).len(), 2);
    assert_eq!(counts.keys().as_primitive::<Int32Type>().value(0), 7);
    assert!(counts.is_null(1));
}

#[test]
fn bad_records_are_reported_one_by_one_with_reasons() {
    let d = decoder(
        &[decl("id", "long", true), decl("n", "int", false), decl("amount", "decimal(5,2)", false)],
        EpochUnit::Millis,
    );
    let out = d
        .decode([
            Some(&br#"{"id": 1}"#[..]),
            Some(&b"not json"[..]),
            Some(&br#"{"n": 1}"#[..]),
            Some(&br#"{"id": "x"}"#[..]),
            Some(&br#"{"id": 5, "n": 3000000000}"#[..]),
            Some(&br#"[1,2]"#[..]),
            None,
            Some(&br#"{"id": 6, "amount": 1.234}"#[..]),
            Some(&br#"{"id": 7, "amount": 12345.6}"#[..]),
            Some(&br#"{"id": 8, "extra": {"ignored": true}}"#[..]),
        ])
        .expect("decode");
    assert_eq!(out.rows, vec![0, 9]);
    let kinds: Vec<&str> = out.errors.iter().map(|(_, e)| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            "not_json",
            "missing_field",
            "wrong_type",
            "out_of_range",
            "wrong_type",
            "empty",
            "out_of_range",
            "out_of_range"
        ]
    );
    assert!(out.errors[2].1.message.contains("id: expected an integer"), "{}", out.errors[2].1);
}

#[test]
fn decimal_text_is_exact_or_refused() {
    assert_eq!(parse_decimal("123.45", 10, 2), Ok(12345));
    assert_eq!(parse_decimal("-0.5", 10, 2), Ok(-50));
    assert_eq!(parse_decimal("1e3", 10, 2), Ok(100_000));
    assert_eq!(parse_decimal("1.20", 10, 1), Ok(12));
    assert!(parse_decimal("1.234", 10, 2).is_err());
    assert!(parse_decimal("100000", 5, 1).is_err());
    assert!(parse_decimal("abc", 5, 1).is_err());
    assert!(parse_decimal(".", 5, 1).is_err());
}

#[test]
fn refuses_nanosecond_timestamps_at_start_up() {
    use iceberg::spec::{NestedField, PrimitiveType, Schema, Type};
    let schema = Schema::builder()
        .with_fields(vec![NestedField::optional(1, "ts", Type::Primitive(PrimitiveType::TimestampNs)).into()])
        .build()
        .expect("schema");
    let err = JsonDecoder::new(Arc::new(schema), JsonOptions::default()).expect_err("unsupported");
    assert!(err.to_string().contains("column ts"), "{err}");
}

/// Every field type, nested shapes, and edge cases — valid and invalid.
pub(super) fn rich_decoder() -> JsonDecoder {
    decoder(
        &[
            decl("id", "long", true),
            decl("i", "int", false),
            decl("d", "double", false),
            decl("f", "float", false),
            decl("dec", "decimal(10,2)", false),
            decl("b", "boolean", false),
            decl("s", "string", false),
            decl("bin", "binary", false),
            decl("fx", "fixed[2]", false),
            decl("u", "uuid", false),
            decl("day", "date", false),
            decl("t", "time", false),
            decl("ts", "timestamp", false),
            decl("tz", "timestamptz", false),
            decl("tags", "list<string>", false),
            decl("nums", "list<int>", false),
            decl("grid", "list<list<double>>", false),
            decl("geo", "struct<lat: double not null, lon: double, tags: list<string>>", false),
            decl("counts", "map<int, long>", false),
            decl("attrs", "map<string, struct<v: string>>", false),
        ],
        EpochUnit::Millis,
    )
}

pub(super) const RECORDS: &[&str] = &[
    r#"{"id": 1, "i": -5, "d": 1.5, "f": 2.5, "dec": "123.45", "b": true, "s": "h\u00e9llo \"q\"", "bin": "AAEC",
        "fx": "AAE=", "u": "123e4567-e89b-12d3-a456-426614174000", "day": "2024-02-29", "t": "12:34:56.789",
        "ts": "2024-01-02T03:04:05.123456", "tz": "2024-01-02T03:04:05+02:00", "tags": ["a", null, "c"],
        "nums": [1, 2], "grid": [[1.5], [], [2, 3]], "geo": {"lat": 1.0, "lon": null, "tags": ["x"]},
        "counts": {"7": 1, "-1": 2}, "attrs": {"k": {"v": "w"}, "n": null}}"#,
    r#"{"id": 2, "dec": 0.1, "day": 19000, "t": 5, "ts": 1700000000123, "tz": 1.7e12, "extra": {"deep": [1, {"x": 2}]}}"#,
    r#"{"id": 3, "i": null, "geo": null, "tags": [], "counts": {}}"#,
    r#"  {"id": 4}  "#,
    r#"{"id": 5, "dec": 12.3456}"#,
    r#"{"id": 6, "i": 3000000000}"#,
    r#"{"id": 7, "nums": [1, null]}"#,
    r#"{"id": 8, "geo": {"lon": 2.0}}"#,
    r#"{"id": 9, "counts": {"x": 1}}"#,
    r#"{"id": "10"}"#,
    r#"{"id": 11, "fx": "AAEC"}"#,
    r#"{"id": 12, "u": "nope"}"#,
    r#"{"id": 13, "ts": "yesterday"}"#,
    r#"{"id": 14, "grid": [[1], "x"]}"#,
    r#"{"id": 15, "b": 1}"#,
    r#"{"i": 1}"#,
    r#"[1, 2]"#,
    r#"{"id": 16,}"#,
    r#"{"id": 17} trailing"#,
    r#"17"#,
    r#"{"id": 18, "d": 1e400}"#,
    r#"{"id": 9223372036854775807, "i": -2147483648}"#,
    r#"{"id": 9223372036854775808}"#,
    r#"{"id": 19, "dec": "-99999999.99", "attrs": {"k": {"v": 1}}}"#,
    // Keys out of the schema's order, and unknown keys between known ones: the decoder tries
    // the next field's name first and must fall back correctly.
    r#"{"geo": {"tags": ["y"], "lon": 1.5, "lat": 2.0}, "s": "z", "i": 4, "id": 20}"#,
    r#"{"id": 21, "zz": 1, "i": 2, "d": 1.0, "f": 0.5, "unknown": [1], "b": false}"#,
    r#"{"b": true, "id": 22, "s": "after", "i": 7}"#,
];

#[test]
fn the_streaming_decoder_agrees_with_the_reference_decoder() {
    let d = rich_decoder();
    let payloads = || RECORDS.iter().map(|r| Some(r.as_bytes())).chain([None]);
    let fast = d.decode(payloads()).expect("fast");
    let reference = d.decode_reference(payloads()).expect("reference");
    assert_eq!(fast.rows, reference.rows, "the same records decode");
    assert_eq!(fast.batch, reference.batch, "to the same values");
    let kinds = |out: &Decoded| out.errors.iter().map(|(i, e)| (*i, e.kind)).collect::<Vec<_>>();
    assert_eq!(kinds(&fast), kinds(&reference), "and the same records fail, for the same class of reason");
    assert!(fast.rows.len() >= 5 && fast.errors.len() >= 15, "both kinds are exercised: {:?}", kinds(&fast));
    for ((_, f), (_, r)) in fast.errors.iter().zip(&reference.errors) {
        // The column the message names (paths inside maps differ in detail).
        let column =
            |m: &str| m.split([':', '.', '[']).next().map(|c| c.trim_start_matches("required field ").to_string());
        if f.kind != "not_json" {
            assert_eq!(column(&f.message), column(&r.message), "both name the same column: {f} / {r}");
        }
    }
}

#[test]
fn mutated_records_decode_the_same_on_both_paths() {
    let d = rich_decoder();
    // Values of keys the table does not have are checked for syntax only: a number too large
    // for a double there is skipped by the streaming path, refused by the reference.
    let inputs: Vec<Vec<u8>> =
        mutated_records(3000, SYNTAX).into_iter().filter(|m| !String::from_utf8_lossy(m).contains("e400")).collect();
    // A known key given twice makes a record bad; the reference, built on `serde_json::Value`,
    // cannot see repeats (it keeps the last), so such records are left out of the comparison.
    let repeated: std::collections::HashSet<usize> = d
        .decode(inputs.iter().map(|p| Some(p.as_slice())))
        .expect("fast")
        .errors
        .into_iter()
        .filter(|(_, e)| e.message.contains("appears twice"))
        .map(|(i, _)| i)
        .collect();
    let inputs: Vec<Vec<u8>> =
        inputs.into_iter().enumerate().filter(|(i, _)| !repeated.contains(i)).map(|(_, m)| m).collect();
    let fast = d.decode(inputs.iter().map(|p| Some(p.as_slice()))).expect("fast");
    let reference = d.decode_reference(inputs.iter().map(|p| Some(p.as_slice()))).expect("reference");
    assert_eq!(fast.rows, reference.rows);
    assert_eq!(fast.batch, reference.batch);
    for column in fast.batch.columns() {
        column.to_data().validate_full().expect("valid Arrow data");
    }
}

#[test]
fn the_fast_timestamp_parser_agrees_with_chrono() {
    let cases = [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05.123456Z",
        "2024-01-02 03:04:05.1+02:00",
        "2024-02-29T23:59:59.999999999-05:30",
        "1969-12-31T23:59:59.5Z",
        "2023-11-14T22:13:20+00:00",
    ];
    for text in cases {
        let fast = parse_rfc3339_fast(text.as_bytes()).expect(text);
        let chrono = chrono::DateTime::parse_from_rfc3339(&text.replacen(' ', "T", 1)).expect(text).timestamp_micros();
        assert_eq!(fast, chrono, "{text}");
    }
    for odd in [
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2024-01-02T24:00:00Z",
        "2024-01-02T03:04:05",
        "2024-01-02T03:04:05.Z",
        "2024-01-02T03:04:05+2:00",
        "2024-01-02T03:04:05.1234567890Z",
        "2024-0a-02T03:04:05Z",
    ] {
        assert_eq!(parse_rfc3339_fast(odd.as_bytes()), None, "{odd} is left to chrono");
    }
    // Every day of years around leap rules (0000, 1900, 2000, 2100, 9999), every month end and
    // fraction length, against chrono.
    for year in [0, 1, 4, 99, 100, 400, 1582, 1899, 1900, 1969, 1970, 2000, 2023, 2024, 2100, 2400, 9999] {
        for month in 1..=12 {
            for day in 1..=31 {
                let digits =
                    ["", ".5", ".25", ".125", ".0625", ".03125", ".015625", ".0078125", ".00390625", ".001953125"];
                let fraction = digits[(day as usize) % digits.len()];
                let offset = ["Z", "+14:00", "-12:30", "+00:00"][(month as usize) % 4];
                let text =
                    format!("{year:04}-{month:02}-{day:02}T{:02}:59:{:02}{fraction}{offset}", day % 24, month * 4);
                let chrono = chrono::DateTime::parse_from_rfc3339(&text).ok().map(|t| t.timestamp_micros());
                assert_eq!(parse_rfc3339_fast(text.as_bytes()), chrono, "{text}");
            }
        }
    }
}

#[test]
fn a_known_key_given_twice_is_refused_in_any_key_order() {
    let d = rich_decoder();
    let out = decode(
        &d,
        &[
            r#"{"id": 1, "id": 2}"#,
            r#"{"i": 1, "id": 2, "i": 3}"#,
            r#"{"id": 3, "zz": 1, "zz": 2}"#,
            r#"{"s": "a", "id": 4}"#,
        ],
    );
    let refused: Vec<usize> = out
        .errors
        .iter()
        .map(|(i, e)| (*i, e.message.contains("appears twice")))
        .filter(|(_, t)| *t)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(refused, [0, 1], "{:?}", out.errors);
    assert_eq!(out.rows, [2, 3], "unknown keys may repeat; keys may come in any order");
}

/// Objects of 64, 65, 128 and 129 fields (either way the scanner tracks the fields given): all
/// given, some missing, a required one missing, and a key repeated past the 64th field decode
/// as the serde path decodes them.
#[test]
fn wide_objects_decode_alike_on_both_paths() {
    for width in [64, 65, 128, 129] {
        let mut fields: Vec<FieldDecl> = (0..width).map(|i| decl(&format!("f{i}"), "long", false)).collect();
        fields[width - 1].required = true;
        let d = decoder(&fields, EpochUnit::Millis);
        let object = |skip: &[usize], extra: &str| {
            let members: Vec<String> =
                (0..width).filter(|i| !skip.contains(i)).map(|i| format!("\"f{i}\": {}", i * 7)).collect();
            format!("{{{}{extra}}}", members.join(", "))
        };
        let records = [
            object(&[], ""),
            object(&[3, 40, 62, 100], ""),
            object(&[width - 1], ""),
            object(&[], &format!(", \"f{}\": 1", width - 2)),
            object(&[], ", \"unknown\": [1, {\"x\": 2}]"),
        ];
        let payloads = || records.iter().map(|r| Some(r.as_bytes()));
        let scanned = d.decode(payloads()).expect("with the scanner");
        let by_serde = d.decode_by_serde(payloads()).expect("serde only");
        assert_eq!(scanned.rows, [0, 1, 4], "{width} fields: complete, some missing, unknown key");
        assert_eq!(scanned.rows, by_serde.rows, "{width} fields");
        assert_eq!(scanned.batch, by_serde.batch, "{width} fields");
        let errors = |out: &Decoded| out.errors.iter().map(|(i, e)| (*i, e.message.clone())).collect::<Vec<_>>();
        assert_eq!(errors(&scanned), errors(&by_serde), "{width} fields");
    }
}
