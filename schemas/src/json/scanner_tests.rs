//! The JSON scanner against the serde path it stands in front of: the same rows, values and
//! errors on valid, mutated and random input (and the mutations the other JSON tests use).

use super::tests::{RECORDS, rich_decoder};
use crate::decoded::Decoded;

/// Bytes that make JSON go wrong in interesting ways.
pub(super) const SYNTAX: &[u8] = b"{}[]\",:0123456789.-enulltrue ";

/// `n` records from [`RECORDS`], each with one byte replaced (by one of `alphabet`), cut off
/// or removed.
pub(super) fn mutated_records(n: usize, alphabet: &[u8]) -> Vec<Vec<u8>> {
    let mut state = 7u64;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    (0..n)
        .map(|_| {
            let mut m = RECORDS[next() % RECORDS.len()].as_bytes().to_vec();
            match next() % 3 {
                0 => {
                    let i = next() % m.len();
                    m[i] = alphabet[next() % alphabet.len()];
                }
                1 => m.truncate(next() % m.len()),
                _ => {
                    let i = next() % m.len();
                    m.remove(i);
                }
            }
            m
        })
        .collect()
}

/// The scanner in front of the serde path changes nothing: the same rows, the same values,
/// the same errors with the same messages, on valid, mutated and random input.
#[test]
fn the_scanner_decodes_exactly_as_the_serde_path() {
    let d = rich_decoder();
    let mut inputs: Vec<Vec<u8>> = RECORDS.iter().map(|r| r.as_bytes().to_vec()).collect();
    inputs.extend(mutated_records(5000, SYNTAX));
    inputs.extend(mutated_records(2000, b"\\\x01\xc3\xff\"u"));
    let mut state = 11u64;
    for len in 0..400 {
        let bytes = (0..len % 40)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let alphabet = b"{}[]\":,0123456789.-+eEtrufalsn \\u\x80\xff\x1fid";
                alphabet[(state >> 33) as usize % alphabet.len()]
            })
            .collect();
        inputs.push(bytes);
    }
    // Numbers of every shape the scanner computes itself, and just beyond: each must be
    // serde_json's value bit for bit.
    for i in 0..4000u64 {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let r = state >> 20;
        let digits =
            |n: u64, seed: u64| (0..n).map(|k| char::from(b'0' + ((seed >> (k * 3)) % 10) as u8)).collect::<String>();
        let int = digits(1 + r % 17, r >> 5).trim_start_matches('0').to_string();
        let int = if int.is_empty() { "0".to_string() } else { int };
        let fraction = match (r >> 9) % 3 {
            0 => String::new(),
            _ => format!(".{}", digits(1 + (r >> 11) % 10, r >> 13)),
        };
        let exponent = match (r >> 15) % 4 {
            0 => format!("e{}", (r >> 17) % 26),
            1 => format!("E-{}", (r >> 17) % 26),
            _ => String::new(),
        };
        let sign = if (r >> 19).is_multiple_of(2) { "-" } else { "" };
        let n = format!("{sign}{int}{fraction}{exponent}");
        inputs.push(format!(r#"{{"id": {i}, "d": {n}, "f": {n}, "dec": {n}, "tz": {n}}}"#).into_bytes());
        inputs.push(format!(r#"{{"id": {i}, "d": {n}}}"#).into_bytes());
    }
    inputs.push(format!("{{\"id\": 1, \"zz\": {}1{}}}", "[".repeat(300), "]".repeat(300)).into_bytes());
    inputs.push(format!("{{\"id\": 1, \"zz\": {}1{}}}", "[".repeat(120), "]".repeat(120)).into_bytes());
    let payloads = || inputs.iter().map(|p| Some(p.as_slice()));
    let scanned = d.decode(payloads()).expect("with the scanner");
    let by_serde = d.decode_by_serde(payloads()).expect("serde only");
    assert_eq!(scanned.rows, by_serde.rows);
    assert_eq!(scanned.batch, by_serde.batch);
    let errors = |out: &Decoded| out.errors.iter().map(|(i, e)| (*i, e.kind, e.message.clone())).collect::<Vec<_>>();
    assert_eq!(errors(&scanned), errors(&by_serde));
    assert!(scanned.rows.len() > 4000 && scanned.errors.len() > 2000, "both kinds are exercised");
}
