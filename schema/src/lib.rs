//! Convect's data model, shared by every other crate: Convex values and their
//! JSON wire format, their total order and index-key encoding, document IDs,
//! limits, validators and schemas. Pure computation; no I/O.

mod base32;
mod display;
mod id;
mod json;
mod key;
mod limits;
mod path;
mod schema_def;
mod schema_error;
mod schema_rules;
mod validator;
mod value;

pub use id::{DocumentId, IdError};
pub use json::{object_from_json, ValueError};
pub use key::{decode_index_key, encode_index_key, prefix_successor, KeyError};
pub use limits::{
    check_document, check_value, value_size, LimitError, MAX_ARRAY_LEN, MAX_DOCUMENT_BYTES,
    MAX_FIELD_NAME_LEN, MAX_NESTING, MAX_OBJECT_FIELDS, MAX_VALUE_BYTES,
};
pub use schema_def::{
    DatabaseSchema, IndexDefinition, SearchIndexDefinition, TableDefinition, VectorIndexDefinition,
};
pub use schema_error::SchemaError;
pub use schema_rules::{
    MAX_FILTER_FIELDS, MAX_INDEXES_PER_TABLE, MAX_INDEX_FIELDS, VECTOR_DIMENSIONS,
};
pub use validator::{
    args_validator_from_json, returns_validator_from_json, FieldValidator, IdTables,
    ValidationError, Validator,
};
pub use value::{compare_optional, get_field_path, Value};
