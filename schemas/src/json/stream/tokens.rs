//! The JSON scanner's tokens: whitespace, strings, numbers and literals by JSON's grammar, and
//! skipping whole values, checked at least as strictly as serde_json checks them (the scanner
//! in `scan.rs` relies on that: what passes here, serde_json accepts too).

/// The scanner gave up on the record: decode it on the serde path.
#[derive(Debug)]
pub(super) struct GiveUp;

pub(super) type Scan<T> = Result<T, GiveUp>;

/// Deeper than this, the serde path decides (serde_json refuses nesting beyond 128).
pub(super) const MAX_DEPTH: usize = 100;

/// Bytes that end the fast loop inside a string: `"`, `\`, control characters.
static STRING_STOP: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = b < 0x20 || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    table
};

/// A number's value, where the scanner computes it.
pub(super) enum Number {
    Int(i64),
    Float(f64),
    /// Left to serde_json: long, `-0`, or beyond the exact range of doubles.
    Other,
}

/// Powers of ten that are exact doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// Powers of ten up to the 15 digits a fraction may have here.
const POW10_INT: [u64; 16] = {
    let mut table = [1u64; 16];
    let mut i = 1;
    while i < 16 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// Scans the digits from `i`, summing them onto `sum` (wrapping); returns the index after them.
fn digits(b: &[u8], mut i: usize, sum: &mut u64) -> usize {
    while let Some(&byte) = b.get(i) {
        let digit = byte.wrapping_sub(b'0');
        if digit >= 10 {
            break;
        }
        *sum = sum.wrapping_mul(10).wrapping_add(u64::from(digit));
        i += 1;
    }
    i
}

/// An object key as producers write it, `"name":`, matched in place a word (8 bytes) at a time:
/// one load and compare for most keys, where a byte loop took a tenth of the scanner's time.
#[derive(Debug)]
pub(super) struct QuotedKey {
    bytes: Vec<u8>,
    /// `bytes` as little-endian words, the last one zero-padded.
    words: Vec<u64>,
    /// Which bytes of the last word are the key's.
    last_mask: u64,
}

impl QuotedKey {
    pub(super) fn new(bytes: Vec<u8>) -> Self {
        let words = bytes
            .chunks(8)
            .map(|chunk| {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                u64::from_le_bytes(word)
            })
            .collect();
        let tail = bytes.len() % 8;
        let last_mask = if tail == 0 { u64::MAX } else { (1u64 << (8 * tail)) - 1 };
        QuotedKey { bytes, words, last_mask }
    }

    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// `input` starts with this key.
    pub(super) fn starts(&self, input: &[u8]) -> bool {
        if input.len() < self.words.len() * 8 {
            return input.starts_with(&self.bytes); // near the record's end
        }
        let last = self.words.len().saturating_sub(1);
        self.words.iter().enumerate().all(|(i, word)| {
            let Ok(chunk) = <[u8; 8]>::try_from(&input[i * 8..i * 8 + 8]) else { return false };
            let mask = if i == last { self.last_mask } else { u64::MAX };
            (u64::from_le_bytes(chunk) ^ word) & mask == 0
        })
    }
}

/// A string token: where its content is, and what it holds.
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) escaped: bool,
}

pub(super) struct Scanner<'a> {
    /// The record, checked to be UTF-8.
    pub(super) text: &'a str,
    /// The same, as bytes.
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Scanner<'a> {
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub(super) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    pub(super) fn expect(&mut self, byte: u8) -> Scan<()> {
        if self.peek() != Some(byte) {
            return Err(GiveUp);
        }
        self.pos += 1;
        Ok(())
    }

    /// The string token at `pos` (its opening quote); escapes are checked for form only.
    pub(super) fn string(&mut self) -> Scan<Span> {
        let start = self.pos + 1;
        let (mut i, mut escaped) = (start, false);
        loop {
            while i < self.bytes.len() && !STRING_STOP[self.bytes[i] as usize] {
                i += 1;
            }
            match *self.bytes.get(i).ok_or(GiveUp)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i += match *self.bytes.get(i + 1).ok_or(GiveUp)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        b'u' if self.bytes.get(i + 2..i + 6).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => 6,
                        _ => return Err(GiveUp),
                    };
                }
                _ => return Err(GiveUp), // a control character
            }
        }
        self.pos = i + 1;
        Ok(Span { start, end: i, escaped })
    }

    /// The text of a string without escapes (its quotes are ASCII: char boundaries).
    pub(super) fn text(&self, span: &Span) -> Scan<&'a str> {
        self.text.get(span.start..span.end).ok_or(GiveUp)
    }

    /// A number token at `pos`, by JSON's grammar, and its value where computing it here
    /// gives serde_json's answer bit for bit.
    #[inline]
    pub(super) fn number(&mut self) -> Scan<Number> {
        let b = self.bytes;
        let mut i = self.pos;
        let negative = b.get(i) == Some(&b'-');
        i += usize::from(negative);
        let int_start = i;
        // Digits are summed as they are scanned; a sum that overflowed is never used (it is
        // used only for at most 18 digits).
        let mut int = 0u64;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = digits(b, i, &mut int),
            _ => return Err(GiveUp),
        }
        let int_digits = i - int_start;
        let (mut fraction, mut fraction_digits) = (0u64, 0usize);
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = digits(b, start, &mut fraction);
            fraction_digits = i - start;
            if fraction_digits == 0 {
                return Err(GiveUp);
            }
        }
        let mut exponent: Option<i32> = None;
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            let sign = match b.get(i) {
                Some(b'-') => -1,
                Some(b'+') => 1,
                _ => 0,
            };
            i += usize::from(sign != 0);
            let start = i;
            let mut value = 0u64;
            i = digits(b, start, &mut value);
            let count = i - start;
            if count == 0 {
                return Err(GiveUp);
            }
            // Longer exponents go to serde (`i32::MAX` is out of the exact range below anyway).
            let value = if count <= 4 { value as i32 } else { i32::MAX };
            exponent = Some(if sign < 0 { -value } else { value });
        }
        self.pos = i;
        if fraction_digits == 0 && exponent.is_none() {
            // serde_json reads `-0` as a float, and more than 18 digits may not fit an i64.
            if int_digits > 18 || (negative && int == 0) {
                return Ok(Number::Other);
            }
            let magnitude = int as i64;
            return Ok(Number::Int(if negative { -magnitude } else { magnitude }));
        }
        // With at most 15 significant digits and a power of ten up to 22, the significand and
        // the power are exact doubles and one multiplication or division rounds correctly:
        // serde_json computes exactly that (and any correct parser agrees).
        let power = exponent.unwrap_or(0).saturating_sub(fraction_digits as i32);
        if int_digits + fraction_digits > 15 || power.unsigned_abs() as usize >= POW10.len() {
            return Ok(Number::Other);
        }
        let significand = (int * POW10_INT[fraction_digits] + fraction) as f64;
        let pow = POW10[power.unsigned_abs() as usize];
        let value = if power >= 0 { significand * pow } else { significand / pow };
        Ok(Number::Float(if negative { -value } else { value }))
    }

    pub(super) fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if !self.bytes[self.pos..].starts_with(word) {
            return Err(GiveUp);
        }
        self.pos += word.len();
        Ok(())
    }

    /// Skips any value, checking its syntax (at least as strictly as serde_json does).
    pub(super) fn skip_value(&mut self, depth: usize) -> Scan<()> {
        match self.peek().ok_or(GiveUp)? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' if depth >= MAX_DEPTH => return Err(GiveUp),
            b'{' => {
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    if self.peek() != Some(b'"') {
                        return Err(GiveUp);
                    }
                    self.string()?;
                    self.skip_ws();
                    self.expect(b':')?;
                    self.skip_ws();
                    self.skip_value(depth + 1)?;
                    if self.next_member(b'}')? {
                        return Ok(());
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if self.next_member(b']')? {
                        return Ok(());
                    }
                }
            }
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            _ => {
                self.number()?;
            }
        }
        Ok(())
    }

    /// After a member: `,` (more follow: `false`) or `close` (`true`), whitespace skipped.
    pub(super) fn next_member(&mut self, close: u8) -> Scan<bool> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.skip_ws();
                Ok(false)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(GiveUp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::QuotedKey;

    /// Every key length around the word size, matched anywhere a record may hold it: followed
    /// by more bytes, at the record's very end, cut short, and differing in any one byte.
    #[test]
    fn a_quoted_key_matches_exactly_its_own_bytes() {
        for len in 1..=20 {
            let name: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let quoted = format!("\"{name}\":").into_bytes();
            let key = QuotedKey::new(quoted.clone());
            assert_eq!(key.len(), quoted.len());
            for tail in ["", "1", "1234567", "12345678}"] {
                let input = [&quoted[..], tail.as_bytes()].concat();
                assert!(key.starts(&input), "{name} then {tail:?}");
                assert!(!key.starts(&input[..quoted.len() - 1]), "{name} cut short");
                for at in 0..quoted.len() {
                    let mut changed = input.clone();
                    changed[at] ^= 0x20;
                    assert!(!key.starts(&changed), "{name} with byte {at} changed, then {tail:?}");
                }
            }
        }
    }
}
