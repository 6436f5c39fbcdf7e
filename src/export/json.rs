//! JSON values as typed columns (`silt.export.value = json`): each field
//! of a JSON object value becomes a nullable column of the type its first
//! value had (boolean, 64-bit integer, double, or text; arrays and nested
//! objects as their JSON text). A field seen for the first time adds a
//! column, so the schema only grows; an integer goes into a double column.
//! A value that is not a JSON object, or whose field does not fit its
//! column's type, keeps its bytes in the `value_raw` column instead and is
//! counted: export never stops for a value.

use std::sync::Arc;

use arrow_array::builder::BinaryBuilder;
use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow_schema::{DataType, Field};
use serde_json::Value;

use crate::meta::{JsonField, JsonKind as Kind};

/// The column of values that did not fit the schema.
pub const RAW_COLUMN: &str = "value_raw";

/// The names of the columns export files have besides JSON fields' (and
/// `value`, the column of values written as produced, which a topic's
/// Iceberg table may have too): a JSON field of the same name is written
/// as `value.<name>`.
const FIXED_COLUMNS: [&str; 8] = [
    "partition",
    "offset",
    "timestamp",
    "timestamp_type",
    "key",
    "headers",
    "value",
    RAW_COLUMN,
];

/// A field's column name in the file.
pub fn column(field: &JsonField) -> String {
    if FIXED_COLUMNS.contains(&field.name.as_str()) {
        format!("value.{}", field.name)
    } else {
        field.name.clone()
    }
}

/// The JSON fields of the columns `(name, Iceberg type)` of a table:
/// those not fixed, of a JSON field's type.
pub fn fields_of(columns: &[(String, String)]) -> Vec<JsonField> {
    columns
        .iter()
        .filter(|(name, _)| !FIXED_COLUMNS.contains(&name.as_str()))
        .filter_map(|(name, kind)| {
            let kind = match kind.as_str() {
                "boolean" => Kind::Bool,
                "long" => Kind::Int,
                "double" => Kind::Float,
                "string" => Kind::Text,
                _ => return None,
            };
            let name = match name.strip_prefix("value.") {
                Some(fixed) if FIXED_COLUMNS.contains(&fixed) => fixed,
                _ => name,
            };
            Some(JsonField {
                name: name.to_string(),
                kind,
            })
        })
        .collect()
}

/// One field's value.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    /// A non-null JSON value as a scalar.
    fn of(value: Value) -> Scalar {
        match value {
            Value::Bool(b) => Scalar::Bool(b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Scalar::Int(i),
                None => Scalar::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Scalar::Text(s),
            other => Scalar::Text(other.to_string()),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Scalar::Bool(_) => Kind::Bool,
            Scalar::Int(_) => Kind::Int,
            Scalar::Float(_) => Kind::Float,
            Scalar::Text(_) => Kind::Text,
        }
    }

    /// The scalar as a value of a `kind` column, if it fits.
    fn fit(self, kind: Kind) -> Option<Scalar> {
        match (self, kind) {
            (Scalar::Int(i), Kind::Float) => Some(Scalar::Float(i as f64)),
            (s, kind) if s.kind() == kind => Some(s),
            _ => None,
        }
    }
}

/// The typed columns of a file's JSON values, with the raw column.
pub struct JsonColumns {
    fields: Vec<JsonField>,
    /// Per field, a cell per row.
    cells: Vec<Vec<Option<Scalar>>>,
    raw: BinaryBuilder,
    rows: usize,
    conflicts: u64,
}

impl JsonColumns {
    /// Columns for the fields known so far (in this order), more as they
    /// come.
    pub fn new(fields: Vec<JsonField>) -> JsonColumns {
        let cells = fields.iter().map(|_| Vec::new()).collect();
        JsonColumns {
            fields,
            cells,
            raw: BinaryBuilder::new(),
            rows: 0,
            conflicts: 0,
        }
    }

    /// The fields, the new ones last.
    pub fn fields(&self) -> &[JsonField] {
        &self.fields
    }

    /// Values that did not fit (not an object, or a field of another type).
    pub fn conflicts(&self) -> u64 {
        self.conflicts
    }

    /// Adds a row for a record's value (`None`: a null value, all null).
    pub fn push(&mut self, value: Option<&[u8]>) {
        let cells = match value {
            None => Some(Vec::new()),
            Some(bytes) => self.typed(bytes),
        };
        match cells {
            Some(cells) => {
                for column in &mut self.cells {
                    column.push(None);
                }
                for (i, scalar) in cells {
                    self.cells[i][self.rows] = Some(scalar);
                }
                self.raw.append_null();
            }
            None => {
                self.conflicts += 1;
                for column in &mut self.cells {
                    column.push(None);
                }
                self.raw.append_value(value.unwrap_or_default());
            }
        }
        self.rows += 1;
    }

    /// The cells of a JSON object value by column, adding the columns of
    /// new fields; `None` if the value does not fit.
    fn typed(&mut self, bytes: &[u8]) -> Option<Vec<(usize, Scalar)>> {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(bytes) else {
            return None;
        };
        let mut cells = Vec::with_capacity(object.len());
        let mut new = Vec::new();
        for (name, value) in object {
            if value.is_null() {
                continue;
            }
            let scalar = Scalar::of(value);
            match self.fields.iter().position(|f| f.name == name) {
                Some(i) => cells.push((i, scalar.fit(self.fields[i].kind)?)),
                None => new.push((name, scalar)),
            }
        }
        for (name, scalar) in new {
            self.fields.push(JsonField {
                name,
                kind: scalar.kind(),
            });
            self.cells.push(vec![None; self.rows]);
            cells.push((self.fields.len() - 1, scalar));
        }
        Some(cells)
    }

    /// The columns: one per field, then `value_raw`.
    pub fn finish(mut self) -> Vec<(Field, ArrayRef)> {
        let mut columns = Vec::with_capacity(self.fields.len() + 1);
        for (field, cells) in self.fields.iter().zip(self.cells) {
            let (data_type, array): (DataType, ArrayRef) = match field.kind {
                Kind::Bool => (
                    DataType::Boolean,
                    Arc::new(BooleanArray::from_iter(cells.into_iter().map(
                        |c| match c {
                            Some(Scalar::Bool(b)) => Some(b),
                            _ => None,
                        },
                    ))),
                ),
                Kind::Int => (
                    DataType::Int64,
                    Arc::new(Int64Array::from_iter(cells.into_iter().map(|c| match c {
                        Some(Scalar::Int(i)) => Some(i),
                        _ => None,
                    }))),
                ),
                Kind::Float => (
                    DataType::Float64,
                    Arc::new(Float64Array::from_iter(cells.into_iter().map(
                        |c| match c {
                            Some(Scalar::Float(f)) => Some(f),
                            _ => None,
                        },
                    ))),
                ),
                Kind::Text => (
                    DataType::Utf8,
                    Arc::new(StringArray::from_iter(cells.into_iter().map(|c| match c {
                        Some(Scalar::Text(s)) => Some(s),
                        _ => None,
                    }))),
                ),
            };
            columns.push((Field::new(column(field), data_type, true), array));
        }
        columns.push((
            super::with_id(Field::new(RAW_COLUMN, DataType::Binary, true), 11),
            Arc::new(self.raw.finish()),
        ));
        columns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type};

    #[test]
    fn the_schema_grows_and_values_that_do_not_fit_stay_raw() {
        let mut columns = JsonColumns::new(Vec::new());
        columns.push(Some(br#"{"id": 1, "name": "a"}"#));
        columns.push(Some(br#"{"id": 2, "price": 1.5, "offset": 7}"#));
        columns.push(Some(br#"{"id": "three"}"#));
        columns.push(Some(b"not json"));
        columns.push(Some(br#"{"id": 4, "price": 2, "tags": ["x"]}"#));
        columns.push(None);
        assert_eq!(columns.conflicts(), 2);
        let names: Vec<String> = columns.fields().iter().map(column).collect();
        // A record's new fields in key order (serde_json's map).
        assert_eq!(names, ["id", "name", "value.offset", "price", "tags"]);
        let finished = columns.finish();
        let ids = finished[0].1.as_primitive::<Int64Type>();
        assert_eq!(
            (0..6)
                .map(|i| ids.is_valid(i).then(|| ids.value(i)))
                .collect::<Vec<_>>(),
            [Some(1), Some(2), None, None, Some(4), None]
        );
        let prices = finished[3].1.as_primitive::<Float64Type>();
        assert!(prices.is_null(0), "added later: null before");
        assert_eq!((prices.value(1), prices.value(4)), (1.5, 2.0));
        assert_eq!(finished[4].1.as_string::<i32>().value(4), r#"["x"]"#);
        let raw = finished[5].1.as_binary::<i32>();
        assert_eq!(finished[5].0.name(), RAW_COLUMN);
        assert_eq!(raw.value(2), br#"{"id": "three"}"#);
        assert_eq!(raw.value(3), b"not json");
        assert!(raw.is_null(0) && raw.is_null(5));
    }
}
