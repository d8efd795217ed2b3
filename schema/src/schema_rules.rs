//! The rules Convex applies when a schema is pushed: identifier syntax and
//! reserved names for tables and indexes, allowed document validators, index
//! field restrictions and per-table limits.

use std::collections::HashSet;

use crate::limits::field_name_problem;
use crate::schema_def::{
    IndexDefinition, SearchIndexDefinition, TableDefinition, VectorIndexDefinition,
};
use crate::schema_error::SchemaError;
use crate::validator::Validator;

pub const MAX_INDEXES_PER_TABLE: usize = 32;
pub const MAX_INDEX_FIELDS: usize = 16;
pub const MAX_FILTER_FIELDS: usize = 16;
pub const VECTOR_DIMENSIONS: std::ops::RangeInclusive<u32> = 2..=4096;
const MAX_IDENTIFIER_LEN: usize = 64;
const RESERVED_INDEX_NAMES: [&str; 2] = ["by_id", "by_creation_time"];

/// Checks everything about a table except its name (see [`check_table_name`]).
pub(crate) fn check_table(table: &TableDefinition) -> Result<(), SchemaError> {
    for validator in [&table.document_type, &table.staged_document_type]
        .into_iter()
        .flatten()
    {
        check_document_type(validator)?;
    }
    check_index_names(table)?;
    for indexes in [&table.indexes, &table.staged_indexes] {
        check_db_indexes(indexes)?;
    }
    for indexes in [&table.search_indexes, &table.staged_search_indexes] {
        check_search_indexes(indexes)?;
    }
    for indexes in [&table.vector_indexes, &table.staged_vector_indexes] {
        check_vector_indexes(indexes)?;
    }
    Ok(())
}

pub(crate) fn check_table_name(name: &str) -> Result<(), SchemaError> {
    let reason = if name.starts_with('_') {
        Some("names starting with `_` are reserved for system tables")
    } else {
        identifier_problem(name)
    };
    match reason {
        Some(reason) => Err(SchemaError::InvalidTableName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn identifier_problem(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
        Some("identifiers must start with a letter")
    } else if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Some("identifiers may only contain letters, digits and underscores")
    } else if name.len() > MAX_IDENTIFIER_LEN {
        Some("identifiers must be at most 64 characters long")
    } else {
        None
    }
}

/// Stored documents are objects, so a table validator must describe objects;
/// their top-level `_` fields belong to the system (see `check_document`).
fn check_document_type(validator: &Validator) -> Result<(), SchemaError> {
    match validator {
        Validator::Any => Ok(()),
        Validator::Union(members) => members.iter().try_for_each(check_document_type),
        Validator::Object(fields) => match fields.keys().find(|k| k.starts_with('_')) {
            Some(field) => Err(SchemaError::InvalidDocumentType(format!(
                "field `{field}`: top-level field names starting with `_` are reserved for system fields"
            ))),
            None => Ok(()),
        },
        other => Err(SchemaError::InvalidDocumentType(format!(
            "a table's documents must be objects, a union of objects, or v.any(), not {other}"
        ))),
    }
}

fn check_index_names(table: &TableDefinition) -> Result<(), SchemaError> {
    let names: Vec<&str> = (table
        .indexes
        .iter()
        .chain(&table.staged_indexes)
        .map(|i| i.name.as_str()))
    .chain(
        table
            .search_indexes
            .iter()
            .chain(&table.staged_search_indexes)
            .map(|i| i.name.as_str()),
    )
    .chain(
        table
            .vector_indexes
            .iter()
            .chain(&table.staged_vector_indexes)
            .map(|i| i.name.as_str()),
    )
    .collect();
    if names.len() > MAX_INDEXES_PER_TABLE {
        return Err(SchemaError::TooManyIndexes {
            count: names.len(),
            limit: MAX_INDEXES_PER_TABLE,
        });
    }
    let mut seen = HashSet::new();
    for name in names {
        check_index_name(name)?;
        if !seen.insert(name) {
            return Err(SchemaError::DuplicateIndex(name.to_owned()));
        }
    }
    Ok(())
}

fn check_index_name(name: &str) -> Result<(), SchemaError> {
    let reason = if name.starts_with('_') || RESERVED_INDEX_NAMES.contains(&name) {
        Some("the name is reserved; index names may not start with `_` or be `by_id` or `by_creation_time`")
    } else {
        identifier_problem(name)
    };
    match reason {
        Some(reason) => Err(SchemaError::InvalidIndexName {
            index: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn check_db_indexes(indexes: &[IndexDefinition]) -> Result<(), SchemaError> {
    for (i, index) in indexes.iter().enumerate() {
        check_db_index(index)?;
        if let Some(first) = indexes[..i]
            .iter()
            .find(|other| other.fields == index.fields)
        {
            return Err(SchemaError::IndexesNotUnique {
                first: first.name.clone(),
                second: index.name.clone(),
            });
        }
    }
    Ok(())
}

fn check_db_index(index: &IndexDefinition) -> Result<(), SchemaError> {
    let bad = |reason: String| {
        Err(SchemaError::InvalidIndex {
            index: index.name.clone(),
            reason,
        })
    };
    if index.fields.is_empty() {
        return bad("an index must have at least one field".to_owned());
    }
    if index.fields.len() > MAX_INDEX_FIELDS {
        return bad(format!(
            "an index may have at most {MAX_INDEX_FIELDS} fields"
        ));
    }
    let mut seen = HashSet::new();
    for field in &index.fields {
        if let Some(problem) = db_index_field_problem(field) {
            return bad(format!("invalid field `{field}`: {problem}"));
        }
        if !seen.insert(field) {
            return bad(format!(
                "field `{field}` appears more than once; index fields must be unique"
            ));
        }
    }
    Ok(())
}

/// Convex adds `_creationTime` and `_id` to every index itself.
fn db_index_field_problem(field: &str) -> Option<&'static str> {
    match field {
        "_id" => Some("`_id` is not a valid index field; to load documents by ID, use `db.get(id)`"),
        "_creationTime" => Some(
            "`_creationTime` is automatically added to the end of each index and must not be listed explicitly",
        ),
        _ => field_path_problem(field),
    }
}

fn field_path_problem(field: &str) -> Option<&'static str> {
    if field.starts_with('_') {
        return Some("reserved fields (starting with `_`) are not allowed in indexes");
    }
    field.split('.').find_map(field_name_problem)
}

fn check_search_indexes(indexes: &[SearchIndexDefinition]) -> Result<(), SchemaError> {
    for (i, index) in indexes.iter().enumerate() {
        check_indexed_fields(&index.name, &index.search_field, &index.filter_fields)?;
        if let Some(first) = indexes[..i]
            .iter()
            .find(|o| o.search_field == index.search_field)
        {
            return Err(same_field(&first.name, &index.name, "searchField"));
        }
    }
    Ok(())
}

fn check_vector_indexes(indexes: &[VectorIndexDefinition]) -> Result<(), SchemaError> {
    for (i, index) in indexes.iter().enumerate() {
        check_indexed_fields(&index.name, &index.vector_field, &index.filter_fields)?;
        if !VECTOR_DIMENSIONS.contains(&index.dimensions) {
            return Err(SchemaError::InvalidIndex {
                index: index.name.clone(),
                reason: format!(
                    "`dimensions` is {}, but must be between {} and {}",
                    index.dimensions,
                    VECTOR_DIMENSIONS.start(),
                    VECTOR_DIMENSIONS.end()
                ),
            });
        }
        if let Some(first) = indexes[..i]
            .iter()
            .find(|o| o.vector_field == index.vector_field)
        {
            return Err(same_field(&first.name, &index.name, "vectorField"));
        }
    }
    Ok(())
}

fn check_indexed_fields(
    index: &str,
    field: &str,
    filter_fields: &[String],
) -> Result<(), SchemaError> {
    let bad = |reason: String| {
        Err(SchemaError::InvalidIndex {
            index: index.to_owned(),
            reason,
        })
    };
    if filter_fields.len() > MAX_FILTER_FIELDS {
        return bad(format!(
            "an index may have at most {MAX_FILTER_FIELDS} filter fields"
        ));
    }
    for f in std::iter::once(field).chain(filter_fields.iter().map(String::as_str)) {
        if let Some(problem) = field_path_problem(f) {
            return bad(format!("invalid field `{f}`: {problem}"));
        }
    }
    Ok(())
}

fn same_field(first: &str, second: &str, which: &str) -> SchemaError {
    SchemaError::InvalidIndex {
        index: second.to_owned(),
        reason: format!(
            "it has the same `{which}` as index `{first}`; combine them into one index with all the filter fields"
        ),
    }
}
