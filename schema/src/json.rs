//! Convex's `convex_encoded_json` wire format: plain JSON for null, booleans,
//! finite floats, strings, arrays and objects, plus the tagged objects
//! `{"$integer": ..}`, `{"$float": ..}` and `{"$bytes": ..}` for what JSON
//! cannot carry.

use std::collections::BTreeMap;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::{Map, Number, Value as Json};

use crate::path::{in_field, in_index, At};
use crate::value::Value;

/// Standard base64, padded on output; input is accepted with or without
/// padding because not every client pads.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a JSON document is not a valid encoded Convex value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("field name `{name}` {}: field names may not start with `$`", At(.path))]
    ReservedFieldName { path: String, name: String },
    #[error("object {} has the single key `{key}`, which is not a Convex encoding (expected `$integer`, `$float` or `$bytes`)", At(.path))]
    UnknownEncoding { path: String, key: String },
    #[error("malformed `{key}` {}: {reason}", At(.path))]
    MalformedEncoding {
        path: String,
        key: &'static str,
        reason: String,
    },
    #[error("number {number} {} cannot be represented as a float64", At(.path))]
    UnrepresentableNumber { path: String, number: String },
    #[error("expected a JSON object, found {found}")]
    NotAnObject { found: &'static str },
}

impl Value {
    /// Decodes a value from `convex_encoded_json`.
    pub fn from_json(j: &Json) -> Result<Value, ValueError> {
        decode(j, &mut String::new())
    }

    /// Encodes this value as `convex_encoded_json`.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Int64(i) => tagged("$integer", BASE64.encode(i.to_le_bytes())),
            Value::Float64(x) => float_to_json(*x),
            Value::Boolean(b) => Json::Bool(*b),
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) => tagged("$bytes", BASE64.encode(b)),
            Value::Array(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Decodes a JSON object (such as a document or an argument object) into its
/// fields; anything other than an object is an error.
pub fn object_from_json(j: &Json) -> Result<BTreeMap<String, Value>, ValueError> {
    match Value::from_json(j)? {
        Value::Object(fields) => Ok(fields),
        other => Err(ValueError::NotAnObject {
            found: other.type_name(),
        }),
    }
}

fn tagged(key: &str, payload: String) -> Json {
    let mut map = Map::new();
    map.insert(key.to_owned(), Json::String(payload));
    Json::Object(map)
}

/// JSON numbers cannot carry NaN, the infinities or the sign of zero, so those
/// travel as their little-endian bytes.
fn float_to_json(x: f64) -> Json {
    let negative_zero = x == 0.0 && x.is_sign_negative();
    match Number::from_f64(x) {
        Some(n) if !negative_zero => Json::Number(n),
        _ => tagged("$float", BASE64.encode(x.to_le_bytes())),
    }
}

fn decode(j: &Json, path: &mut String) -> Result<Value, ValueError> {
    Ok(match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => {
            Value::Float64(
                n.as_f64()
                    .ok_or_else(|| ValueError::UnrepresentableNumber {
                        path: path.clone(),
                        number: n.to_string(),
                    })?,
            )
        }
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| in_index(path, i, |p| decode(item, p)))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(map) => decode_object(map, path)?,
    })
}

fn decode_object(map: &Map<String, Json>, path: &mut String) -> Result<Value, ValueError> {
    if map.len() == 1 {
        if let Some((key, payload)) = map.iter().next().filter(|(k, _)| k.starts_with('$')) {
            return decode_encoding(key, payload, path);
        }
    }
    let mut fields = BTreeMap::new();
    for (key, item) in map {
        if key.starts_with('$') {
            return Err(ValueError::ReservedFieldName {
                path: path.clone(),
                name: key.clone(),
            });
        }
        fields.insert(key.clone(), in_field(path, key, |p| decode(item, p))?);
    }
    Ok(Value::Object(fields))
}

fn decode_encoding(key: &str, payload: &Json, path: &str) -> Result<Value, ValueError> {
    match key {
        "$integer" => Ok(Value::Int64(i64::from_le_bytes(eight_bytes(
            "$integer", payload, path,
        )?))),
        "$float" => special_float(
            f64::from_le_bytes(eight_bytes("$float", payload, path)?),
            path,
        ),
        "$bytes" => Ok(Value::Bytes(payload_bytes("$bytes", payload, path)?)),
        _ => Err(ValueError::UnknownEncoding {
            path: path.to_owned(),
            key: key.to_owned(),
        }),
    }
}

/// Convex rejects `$float` for ordinary floats so every float has exactly one
/// encoding.
fn special_float(x: f64, path: &str) -> Result<Value, ValueError> {
    let special = x.is_nan() || x.is_infinite() || (x == 0.0 && x.is_sign_negative());
    if special {
        Ok(Value::Float64(x))
    } else {
        Err(malformed(
            "$float",
            path,
            format!("float {x} must be encoded as a plain JSON number"),
        ))
    }
}

fn payload_bytes(key: &'static str, payload: &Json, path: &str) -> Result<Vec<u8>, ValueError> {
    let Json::String(text) = payload else {
        return Err(malformed(key, path, "expected a base64 string".to_owned()));
    };
    BASE64
        .decode(text)
        .map_err(|e| malformed(key, path, format!("invalid base64 ({e})")))
}

fn eight_bytes(key: &'static str, payload: &Json, path: &str) -> Result<[u8; 8], ValueError> {
    let bytes = payload_bytes(key, payload, path)?;
    <[u8; 8]>::try_from(bytes.as_slice()).map_err(|_| {
        malformed(
            key,
            path,
            format!("expected 8 bytes, received {}", bytes.len()),
        )
    })
}

fn malformed(key: &'static str, path: &str, reason: String) -> ValueError {
    ValueError::MalformedEncoding {
        path: path.to_owned(),
        key,
        reason,
    }
}
