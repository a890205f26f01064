//! Theta sketches of column values, as the Puffin spec's `apache-datasketches-theta-v1` blob
//! asks: Apache DataSketches' sketch (default seed), fed each non-null value in Iceberg's
//! single-value serialization — the bytes Spark's `compute_table_stats` and Trino feed theirs,
//! so every engine's sketches of one column merge. 16,384 nominal entries (Spark's default is
//! 4,096): a relative standard error of 0.8% instead of 1.6%, for 128 KiB per column.

use arrow_array::ArrayRef;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type, Time64MicrosecondType,
    TimestampMicrosecondType, TimestampNanosecondType,
};
use arrow_schema::{DataType, TimeUnit};
use datasketches::hash::value::raw_bytes;
use datasketches::theta::{CompactThetaSketch, ThetaSketch, ThetaSketchBuilder, ThetaUnionBuilder};
use iceberg::spec::PrimitiveType;

use crate::{Error, Result};

/// log2 of the nominal entries of our sketches.
pub const LG_K: u8 = 14;

/// A column's sketch while values are added.
pub struct ColumnSketch {
    sketch: ThetaSketch,
    ty: PrimitiveType,
}

impl ColumnSketch {
    /// An empty sketch of a column of type `ty`.
    pub fn new(ty: &PrimitiveType) -> Result<ColumnSketch> {
        let sketch = ThetaSketchBuilder::default()
            .lg_k(LG_K)
            .build()
            .map_err(|e| Error::Statistics(format!("theta sketch: {e}")))?;
        Ok(ColumnSketch { sketch, ty: ty.clone() })
    }

    /// Adds every non-null value of `array` (a column of the table's Arrow schema).
    pub fn add(&mut self, array: &ArrayRef) -> Result<()> {
        let cast = |target: DataType| {
            arrow_cast::cast(array, &target)
                .map_err(|e| Error::Statistics(format!("theta sketch of a {} column: {e}", self.ty)))
        };
        let unexpected =
            || Error::Statistics(format!("a {} column read as Arrow {}: not sketched", self.ty, array.data_type()));
        let sketch = &mut self.sketch;
        match &self.ty {
            PrimitiveType::Boolean => array
                .as_boolean_opt()
                .ok_or_else(unexpected)?
                .iter()
                .flatten()
                .for_each(|v| sketch.update(raw_bytes::from_slice(&[u8::from(v)]))),
            PrimitiveType::Int => ints(sketch, cast(DataType::Int32)?.as_primitive::<Int32Type>().iter()),
            PrimitiveType::Date => ints(sketch, cast(DataType::Date32)?.as_primitive::<Date32Type>().iter()),
            PrimitiveType::Long => longs(sketch, cast(DataType::Int64)?.as_primitive::<Int64Type>().iter()),
            PrimitiveType::Time => longs(
                sketch,
                cast(DataType::Time64(TimeUnit::Microsecond))?.as_primitive::<Time64MicrosecondType>().iter(),
            ),
            PrimitiveType::Timestamp | PrimitiveType::Timestamptz => {
                let values = cast(DataType::Timestamp(TimeUnit::Microsecond, None))?;
                longs(sketch, values.as_primitive::<TimestampMicrosecondType>().iter())
            }
            PrimitiveType::TimestampNs | PrimitiveType::TimestamptzNs => {
                let values = cast(DataType::Timestamp(TimeUnit::Nanosecond, None))?;
                longs(sketch, values.as_primitive::<TimestampNanosecondType>().iter())
            }
            PrimitiveType::Float => cast(DataType::Float32)?
                .as_primitive::<Float32Type>()
                .iter()
                .flatten()
                .for_each(|v| sketch.update(raw_bytes::from_slice(&v.to_le_bytes()))),
            PrimitiveType::Double => cast(DataType::Float64)?
                .as_primitive::<Float64Type>()
                .iter()
                .flatten()
                .for_each(|v| sketch.update(raw_bytes::from_slice(&v.to_le_bytes()))),
            PrimitiveType::String => cast(DataType::Utf8)?
                .as_string::<i32>()
                .iter()
                .flatten()
                .for_each(|v| sketch.update(raw_bytes::from_slice(v.as_bytes()))),
            PrimitiveType::Uuid | PrimitiveType::Fixed(_) => array
                .as_fixed_size_binary_opt()
                .ok_or_else(unexpected)?
                .iter()
                .flatten()
                .for_each(|v| sketch.update(raw_bytes::from_slice(v))),
            PrimitiveType::Binary => cast(DataType::Binary)?
                .as_binary::<i32>()
                .iter()
                .flatten()
                .for_each(|v| sketch.update(raw_bytes::from_slice(v))),
            PrimitiveType::Decimal { .. } => array
                .as_primitive_opt::<Decimal128Type>()
                .ok_or_else(unexpected)?
                .iter()
                .flatten()
                .for_each(|v| sketch.update(raw_bytes::from_slice(&minimal_twos_complement(v)))),
        }
        Ok(())
    }

    /// The sketch of every value added, merged with `previous` (a sketch of earlier values, for
    /// an incremental run), as the compact sketch a Puffin blob holds. Both paths go through a
    /// union, which keeps the k smallest hashes: an incremental result equals a full one.
    pub fn finish(&self, previous: Option<&CompactThetaSketch>) -> Result<CompactThetaSketch> {
        let failed = |e: datasketches::error::Error| Error::Statistics(format!("theta union: {e}"));
        let mut union = ThetaUnionBuilder::default().lg_k(LG_K).build().map_err(failed)?;
        union.update(&self.sketch).map_err(failed)?;
        if let Some(previous) = previous {
            union.update(previous).map_err(failed)?;
        }
        Ok(union.to_sketch(true))
    }
}

fn ints(sketch: &mut ThetaSketch, values: impl Iterator<Item = Option<i32>>) {
    values.flatten().for_each(|v| sketch.update(raw_bytes::from_slice(&v.to_le_bytes())));
}

fn longs(sketch: &mut ThetaSketch, values: impl Iterator<Item = Option<i64>>) {
    values.flatten().for_each(|v| sketch.update(raw_bytes::from_slice(&v.to_le_bytes())));
}

/// Java's `BigInteger.toByteArray()`: the shortest big-endian two's complement.
fn minimal_twos_complement(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (byte, next) = (bytes[start], bytes[start + 1]);
        let redundant = (byte == 0x00 && next & 0x80 == 0) || (byte == 0xFF && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    bytes[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn decimals_serialise_as_java_big_integers_do() {
        assert_eq!(minimal_twos_complement(0), vec![0x00]);
        assert_eq!(minimal_twos_complement(127), vec![0x7F]);
        assert_eq!(minimal_twos_complement(128), vec![0x00, 0x80]);
        assert_eq!(minimal_twos_complement(-1), vec![0xFF]);
        assert_eq!(minimal_twos_complement(-128), vec![0x80]);
        assert_eq!(minimal_twos_complement(-129), vec![0xFF, 0x7F]);
        assert_eq!(minimal_twos_complement(65_535), vec![0x00, 0xFF, 0xFF]);
    }

    /// 200k distinct longs in two halves: the incremental union equals one sketch of all,
    /// byte for byte, and the estimate is within 2% (exact below 4096 values).
    #[test]
    fn a_merged_sketch_equals_one_over_everything() {
        let all: ArrayRef = Arc::new(Int64Array::from_iter_values(0..200_000));
        let mut full = ColumnSketch::new(&PrimitiveType::Long).expect("sketch");
        full.add(&all).expect("add");
        let full = full.finish(None).expect("finish");
        let (first, second) = (all.slice(0, 120_000), all.slice(100_000, 100_000));
        let mut earlier = ColumnSketch::new(&PrimitiveType::Long).expect("sketch");
        earlier.add(&first).expect("add");
        let earlier = earlier.finish(None).expect("finish");
        let mut later = ColumnSketch::new(&PrimitiveType::Long).expect("sketch");
        later.add(&second).expect("add");
        let merged = later.finish(Some(&earlier)).expect("finish");
        assert_eq!(merged.serialize(), full.serialize(), "incremental = full");
        assert!((full.estimate() - 200_000.0).abs() / 200_000.0 < 0.02, "{}", full.estimate());

        let few: ArrayRef = Arc::new(StringArray::from(vec![Some("ü/?#%"), None, Some("b"), Some("ü/?#%")]));
        let mut strings = ColumnSketch::new(&PrimitiveType::String).expect("sketch");
        strings.add(&few).expect("add");
        assert_eq!(strings.finish(None).expect("finish").estimate(), 2.0, "nulls are not values");
    }

    #[test]
    fn every_kind_of_column_is_sketched_and_a_mismatch_is_an_error() {
        use arrow_array::{BooleanArray, Decimal128Array, FixedSizeBinaryArray};
        let estimate = |ty: PrimitiveType, array: ArrayRef| {
            let mut sketch = ColumnSketch::new(&ty).expect("sketch");
            sketch.add(&array).expect("add");
            sketch.finish(None).expect("finish").estimate()
        };
        let booleans: ArrayRef = Arc::new(BooleanArray::from(vec![Some(true), None, Some(false), Some(true)]));
        assert_eq!(estimate(PrimitiveType::Boolean, booleans), 2.0);
        let decimals =
            Decimal128Array::from(vec![Some(-129), Some(128), None, Some(128)]).with_precision_and_scale(10, 2);
        let decimals: ArrayRef = Arc::new(decimals.expect("decimal type"));
        assert_eq!(estimate(PrimitiveType::Decimal { precision: 10, scale: 2 }, decimals), 2.0);
        let uuids: ArrayRef =
            Arc::new(FixedSizeBinaryArray::from(vec![&[1u8; 16][..], &[2u8; 16][..], &[1u8; 16][..]]));
        assert_eq!(estimate(PrimitiveType::Uuid, uuids), 2.0);
        let ints: ArrayRef = Arc::new(arrow_array::Int32Array::from(vec![Some(7), Some(7), None, Some(-7)]));
        assert_eq!(estimate(PrimitiveType::Int, ints), 2.0);
        let days: ArrayRef = Arc::new(arrow_array::Date32Array::from(vec![20_000, 20_001, 20_000]));
        assert_eq!(estimate(PrimitiveType::Date, days), 2.0);

        let mut wrong = ColumnSketch::new(&PrimitiveType::Boolean).expect("sketch");
        let e = wrong.add(&(Arc::new(Int64Array::from(vec![1])) as ArrayRef)).expect_err("a long is no boolean");
        assert!(e.to_string().contains("read as Arrow Int64"), "{e}");
    }
}
