//! Source schemas and the table's schema: where records' schemas come from (fixed files or the
//! schema registry, [`sources`], [`registry`]) and how the table follows a new one
//! ([`evolution`], which commits the table change it needs).

pub mod evolution;
pub mod registry;
pub mod sources;
