//! Lower and upper bounds of one column and their serialized form. A bound must hold every
//! value in the file: readers skip a file whose bounds exclude a filter's values, so a bound
//! that is too tight loses rows from every engine's filtered queries.

use iceberg::spec::PrimitiveType;

/// Bounds of one column's non-null, non-NaN values, in Iceberg's order for the type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Bounds {
    Bool(bool, bool),
    Int(i32, i32),
    Long(i64, i64),
    Float(f32, f32),
    Double(f64, f64),
    Decimal(i128, i128),
    Str(String, String),
    Bytes(Vec<u8>, Vec<u8>),
}

/// Min and max of the non-null values (NaN excluded).
pub(super) fn min_max<T: PartialOrd + Copy>(values: impl Iterator<Item = Option<T>>) -> Option<(T, T)> {
    let mut out: Option<(T, T)> = None;
    for v in values.flatten() {
        #[allow(clippy::eq_op)]
        if v != v {
            continue; // NaN
        }
        out = Some(match out {
            None => (v, v),
            Some(bounds) => wider(bounds, (v, v)),
        });
    }
    out
}

fn wider<T: PartialOrd>((lo, hi): (T, T), (l, h): (T, T)) -> (T, T) {
    (if l < lo { l } else { lo }, if h > hi { h } else { hi })
}

impl Bounds {
    /// Bounds that hold the values of both.
    pub(super) fn merge(self, new: Bounds) -> Bounds {
        use Bounds::*;
        match (self, new) {
            (Bool(a, b), Bool(c, d)) => {
                let (l, h) = wider((a, b), (c, d));
                Bool(l, h)
            }
            (Int(a, b), Int(c, d)) => {
                let (l, h) = wider((a, b), (c, d));
                Int(l, h)
            }
            (Long(a, b), Long(c, d)) => {
                let (l, h) = wider((a, b), (c, d));
                Long(l, h)
            }
            (Float(a, b), Float(c, d)) => {
                let (l, h) = wider((a, b), (c, d));
                Float(l, h)
            }
            (Double(a, b), Double(c, d)) => {
                let (l, h) = wider((a, b), (c, d));
                Double(l, h)
            }
            (Decimal(a, b), Decimal(c, d)) => {
                let (l, h) = wider((a, b), (c, d));
                Decimal(l, h)
            }
            (Str(a, b), Str(c, d)) => {
                let (l, h) = wider((a, b), (c, d));
                Str(l, h)
            }
            (Bytes(a, b), Bytes(c, d)) => {
                let (l, h) = wider((a, b), (c, d));
                Bytes(l, h)
            }
            // One column has one type.
            (old, _) => old,
        }
    }

    /// Lower and upper bound in Iceberg's single-value serialization, strings and binaries cut
    /// to `truncate` characters/bytes (upper `None` when no cut upper bound exists).
    pub(super) fn into_bytes(self, ty: &PrimitiveType, truncate: Option<usize>) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        match self {
            Bounds::Bool(l, h) => (Some(vec![u8::from(l)]), Some(vec![u8::from(h)])),
            Bounds::Int(l, h) => (Some(l.to_le_bytes().to_vec()), Some(h.to_le_bytes().to_vec())),
            Bounds::Long(l, h) => (Some(l.to_le_bytes().to_vec()), Some(h.to_le_bytes().to_vec())),
            // -0.0 and 0.0 compare equal, yet Iceberg orders -0.0 first: a zero bound takes
            // the sign that holds both.
            Bounds::Float(l, h) => {
                let (l, h) = (if l == 0.0 { -0.0f32 } else { l }, if h == 0.0 { 0.0f32 } else { h });
                (Some(l.to_le_bytes().to_vec()), Some(h.to_le_bytes().to_vec()))
            }
            Bounds::Double(l, h) => {
                let (l, h) = (if l == 0.0 { -0.0f64 } else { l }, if h == 0.0 { 0.0f64 } else { h });
                (Some(l.to_le_bytes().to_vec()), Some(h.to_le_bytes().to_vec()))
            }
            Bounds::Decimal(l, h) => (Some(decimal_bytes(l)), Some(decimal_bytes(h))),
            Bounds::Str(l, h) => match truncate {
                None => (Some(l.into_bytes()), Some(h.into_bytes())),
                Some(n) => {
                    (Some(truncate_str_lower(&l, n).into_bytes()), truncate_str_upper(&h, n).map(String::into_bytes))
                }
            },
            // Uuids and fixed values have a fixed length: kept whole.
            Bounds::Bytes(l, h) if !matches!(ty, PrimitiveType::Binary) => (Some(l), Some(h)),
            Bounds::Bytes(l, h) => match truncate {
                None => (Some(l), Some(h)),
                Some(n) => (Some(l[..l.len().min(n)].to_vec()), truncate_bytes_upper(&h, n)),
            },
        }
    }
}

/// An unscaled decimal as Iceberg stores it: two's-complement big-endian, fewest bytes.
pub(super) fn decimal_bytes(value: i128) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    // Drop leading bytes that only repeat the sign of the next one.
    let mut start = 0;
    while start < 15 {
        let (byte, next) = (bytes[start], bytes[start + 1]);
        if (byte == 0x00 && next & 0x80 == 0) || (byte == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    bytes[start..].to_vec()
}

/// The first `n` characters: every string with that prefix is ≥ it.
pub(super) fn truncate_str_lower(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The shortest string of at most `n` characters that is ≥ every string with `s`'s first `n`
/// characters as prefix: those characters with the last one incremented (past the surrogate
/// gap; a character that cannot grow is dropped and the one before it grows).
pub(super) fn truncate_str_upper(s: &str, n: usize) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    if chars.len() <= n {
        return Some(s.to_string());
    }
    chars.truncate(n);
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// As [`truncate_str_upper`], for bytes (unsigned order).
pub(super) fn truncate_bytes_upper(b: &[u8], n: usize) -> Option<Vec<u8>> {
    if b.len() <= n {
        return Some(b.to_vec());
    }
    let mut out = b[..n].to_vec();
    while let Some(last) = out.pop() {
        if last < u8::MAX {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}
