//! Partition tuples as manifests hold them. A file written before its partition source column
//! was widened (int → long, float → double, a decimal's precision raised) keeps values of the
//! old type; the spec's partition type is now the wider one. Java promotes such values when it
//! reads them; so does everything here that renders, compares or rewrites partition tuples
//! (iceberg-rust panics on the mismatch).

use iceberg::spec::{
    DataFile, DataFileBuilder, Literal, PartitionSpec, PrimitiveLiteral, PrimitiveType, Schema, Struct, StructType,
    Type,
};

/// Whether a partition value of this kind can be a value of `ty`, directly or promoted.
pub fn literal_fits(literal: &PrimitiveLiteral, ty: &PrimitiveType) -> bool {
    use PrimitiveType as T;
    match literal {
        PrimitiveLiteral::Boolean(_) => matches!(ty, T::Boolean),
        PrimitiveLiteral::Int(_) => matches!(ty, T::Int | T::Date | T::Long),
        PrimitiveLiteral::Long(_) => {
            matches!(ty, T::Long | T::Time | T::Timestamp | T::Timestamptz | T::TimestampNs | T::TimestamptzNs)
        }
        PrimitiveLiteral::Float(_) => matches!(ty, T::Float | T::Double),
        PrimitiveLiteral::Double(_) => matches!(ty, T::Double),
        PrimitiveLiteral::String(_) => matches!(ty, T::String),
        PrimitiveLiteral::Binary(_) => matches!(ty, T::Binary | T::Fixed(_) | T::Uuid),
        PrimitiveLiteral::Int128(_) => matches!(ty, T::Decimal { .. }),
        PrimitiveLiteral::UInt128(_) => matches!(ty, T::Uuid),
        PrimitiveLiteral::AboveMax | PrimitiveLiteral::BelowMin => false,
    }
}

/// Whether every value of `values` fits the partition type `ty` (directly or promoted).
pub fn fits(values: &Struct, ty: &StructType) -> bool {
    ty.fields().len() == values.fields().len()
        && ty.fields().iter().zip(values.fields()).all(|(field, value)| match (value, field.field_type.as_ref()) {
            (None, _) => true,
            (Some(Literal::Primitive(literal)), Type::Primitive(ty)) => literal_fits(literal, ty),
            _ => false,
        })
}

/// `values` with each value promoted to its field's type in `ty` (int → long, float →
/// double); values that already have their type are kept.
pub fn promote(values: &Struct, ty: &StructType) -> Struct {
    let promoted = values.fields().iter().zip(ty.fields()).map(|(value, field)| {
        value.as_ref().map(|literal| match (literal, field.field_type.as_ref()) {
            (Literal::Primitive(PrimitiveLiteral::Int(v)), Type::Primitive(PrimitiveType::Long)) => {
                Literal::Primitive(PrimitiveLiteral::Long(i64::from(*v)))
            }
            (Literal::Primitive(PrimitiveLiteral::Float(v)), Type::Primitive(PrimitiveType::Double)) => {
                Literal::Primitive(PrimitiveLiteral::Double(f64::from(v.0).into()))
            }
            (other, _) => other.clone(),
        })
    });
    Struct::from_iter(promoted)
}

/// `file` as an entry of a manifest of `spec` under `schema`: its tuple promoted to the
/// partition type where a source column was widened (manifest writers check the types), the
/// entry itself unchanged otherwise.
pub fn entry_for_spec(file: &DataFile, spec: &PartitionSpec, schema: &Schema) -> DataFile {
    let Ok(ty) = spec.partition_type(schema) else { return file.clone() };
    let promoted = promote(file.partition(), &ty);
    if &promoted == file.partition() {
        return file.clone();
    }
    let mut builder = DataFileBuilder::default();
    builder
        .content(file.content_type())
        .file_path(file.file_path().to_string())
        .file_format(file.file_format())
        .partition(promoted)
        .partition_spec_id(spec.spec_id())
        .record_count(file.record_count())
        .file_size_in_bytes(file.file_size_in_bytes())
        .column_sizes(file.column_sizes().clone())
        .value_counts(file.value_counts().clone())
        .null_value_counts(file.null_value_counts().clone())
        .nan_value_counts(file.nan_value_counts().clone())
        .lower_bounds(file.lower_bounds().clone())
        .upper_bounds(file.upper_bounds().clone())
        .key_metadata(file.key_metadata().map(<[u8]>::to_vec))
        .split_offsets(file.split_offsets().map(<[i64]>::to_vec))
        .equality_ids(file.equality_ids())
        .first_row_id(file.first_row_id())
        .referenced_data_file(file.referenced_data_file())
        .content_offset(file.content_offset())
        .content_size_in_bytes(file.content_size_in_bytes());
    if let Some(order) = file.sort_order_id() {
        builder.sort_order_id(order);
    }
    builder.build().unwrap_or_else(|_| file.clone())
}

#[cfg(test)]
mod tests {
    use iceberg::spec::NestedField;

    use super::*;

    #[test]
    fn old_values_are_promoted_to_the_widened_type() {
        let ty = StructType::new(vec![
            NestedField::optional(1000, "small", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::optional(1001, "ratio", Type::Primitive(PrimitiveType::Double)).into(),
            NestedField::optional(1002, "name", Type::Primitive(PrimitiveType::String)).into(),
        ]);
        let old = Struct::from_iter([Some(Literal::int(3)), Some(Literal::float(0.5)), None]);
        assert!(fits(&old, &ty));
        assert_eq!(promote(&old, &ty), Struct::from_iter([Some(Literal::long(3)), Some(Literal::double(0.5)), None]));
        let wrong = Struct::from_iter([Some(Literal::string("x")), None, None]);
        assert!(!fits(&wrong, &ty));
    }
}
