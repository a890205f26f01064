//! What a record's error says: the JSON path of the value and what was found there.

use std::fmt;

use crate::RecordError;
use crate::error::Reason;

/// A JSON value as the error message shows it.
pub(super) enum Found<'a> {
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
pub(super) enum PathRef<'a> {
    Field(&'a str),
    /// `list[i]`
    Element(&'a str, usize),
    /// `map["key"]`
    Entry(&'a str, &'a str),
}

impl<'a> PathRef<'a> {
    /// The path as text to build element paths on (borrowed for a field: the common case).
    pub(super) fn base(self) -> std::borrow::Cow<'a, str> {
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

pub(super) fn wrong(path: impl fmt::Display, expected: &str, found: Found<'_>) -> RecordError {
    RecordError::new(Reason::WrongType, format!("{path}: expected {expected}, found {found}"))
}

pub(super) fn out_of_range(path: impl fmt::Display, value: impl fmt::Display, ty: &str) -> RecordError {
    RecordError::new(Reason::OutOfRange, format!("{path}: {value} is out of range for {ty}"))
}
