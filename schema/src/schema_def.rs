//! The database schema as exported by `defineSchema(...).export()` in
//! server/schema.ts: tables, their document validators and their database,
//! search and vector indexes (live and staged).

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::schema_error::SchemaError;
use crate::schema_rules::{check_table, check_table_name};
use crate::validator::{FieldValidator, Validator};

/// A parsed and checked schema.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseSchema {
    pub tables: BTreeMap<String, TableDefinition>,
    /// `defineSchema(.., {schemaValidation})`; when false, documents are not
    /// checked against `document_type`.
    pub schema_validation: bool,
}

/// One table of a schema.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDefinition {
    /// The validator for user fields, without `_id`/`_creationTime`; `None`
    /// when the export carries none. See [`TableDefinition::document_validator`].
    pub document_type: Option<Validator>,
    /// A proposed validator checked in the background, not enforced.
    pub staged_document_type: Option<Validator>,
    pub indexes: Vec<IndexDefinition>,
    pub staged_indexes: Vec<IndexDefinition>,
    pub search_indexes: Vec<SearchIndexDefinition>,
    pub staged_search_indexes: Vec<SearchIndexDefinition>,
    pub vector_indexes: Vec<VectorIndexDefinition>,
    pub staged_vector_indexes: Vec<VectorIndexDefinition>,
}

/// A database index; Convex appends `_creationTime` and `_id` to `fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDefinition {
    pub name: String,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchIndexDefinition {
    pub name: String,
    pub search_field: String,
    pub filter_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorIndexDefinition {
    pub name: String,
    pub vector_field: String,
    pub dimensions: u32,
    pub filter_fields: Vec<String>,
}

impl DatabaseSchema {
    /// Parses and checks the string returned by `SchemaDefinition.export()`.
    pub fn from_export_json(s: &str) -> Result<DatabaseSchema, SchemaError> {
        let json: Json = serde_json::from_str(s).map_err(|e| SchemaError::Json(e.to_string()))?;
        let root = as_object(&json, "schema")?;
        let schema_validation = match root.get("schemaValidation") {
            None => true,
            Some(flag) => flag
                .as_bool()
                .ok_or_else(|| malformed("schema", "`schemaValidation` must be a boolean"))?,
        };
        let mut tables = BTreeMap::new();
        for entry in array(root, "tables", "schema")? {
            let (name, table) = parse_table(entry)?;
            if tables.contains_key(&name) {
                return Err(SchemaError::DuplicateTable(name));
            }
            check_table_name(&name)?;
            check_table(&table).map_err(|e| in_table(&name, e))?;
            tables.insert(name, table);
        }
        Ok(DatabaseSchema {
            tables,
            schema_validation,
        })
    }
}

impl TableDefinition {
    /// The validator for whole stored documents: `document_type` with `_id`
    /// (`v.id(table_name)`) and `_creationTime` (`v.float64()`) added to every
    /// object, as `docValidator` does in server/schema.ts.
    pub fn document_validator(&self, table_name: &str) -> Option<Validator> {
        self.document_type
            .as_ref()
            .map(|v| with_system_fields(v, table_name))
    }
}

fn with_system_fields(validator: &Validator, table_name: &str) -> Validator {
    match validator {
        Validator::Object(fields) => {
            let mut fields = fields.clone();
            let required = |validator| FieldValidator {
                validator,
                optional: false,
            };
            fields.insert(
                "_id".to_owned(),
                required(Validator::Id(table_name.to_owned())),
            );
            fields.insert("_creationTime".to_owned(), required(Validator::Float64));
            Validator::Object(fields)
        }
        Validator::Union(members) => Validator::Union(
            members
                .iter()
                .map(|m| with_system_fields(m, table_name))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn parse_table(j: &Json) -> Result<(String, TableDefinition), SchemaError> {
    let obj = as_object(j, "table")?;
    let name = string(obj, "tableName", "table")?;
    let table = parse_table_body(obj).map_err(|e| in_table(&name, e))?;
    Ok((name, table))
}

fn parse_table_body(obj: &Map<String, Json>) -> Result<TableDefinition, SchemaError> {
    Ok(TableDefinition {
        document_type: optional_validator(obj, "documentType")?,
        staged_document_type: optional_validator(obj, "stagedDocumentType")?,
        indexes: list(obj, "indexes", parse_index)?,
        staged_indexes: list(obj, "stagedDbIndexes", parse_index)?,
        search_indexes: list(obj, "searchIndexes", parse_search_index)?,
        staged_search_indexes: list(obj, "stagedSearchIndexes", parse_search_index)?,
        vector_indexes: list(obj, "vectorIndexes", parse_vector_index)?,
        staged_vector_indexes: list(obj, "stagedVectorIndexes", parse_vector_index)?,
    })
}

fn parse_index(obj: &Map<String, Json>) -> Result<IndexDefinition, SchemaError> {
    Ok(IndexDefinition {
        name: string(obj, "indexDescriptor", "index")?,
        fields: strings(obj, "fields", "index")?,
    })
}

fn parse_search_index(obj: &Map<String, Json>) -> Result<SearchIndexDefinition, SchemaError> {
    Ok(SearchIndexDefinition {
        name: string(obj, "indexDescriptor", "search index")?,
        search_field: string(obj, "searchField", "search index")?,
        filter_fields: strings(obj, "filterFields", "search index")?,
    })
}

fn parse_vector_index(obj: &Map<String, Json>) -> Result<VectorIndexDefinition, SchemaError> {
    let dimensions = obj
        .get("dimensions")
        .and_then(Json::as_u64)
        .and_then(|d| u32::try_from(d).ok());
    Ok(VectorIndexDefinition {
        name: string(obj, "indexDescriptor", "vector index")?,
        vector_field: string(obj, "vectorField", "vector index")?,
        dimensions: dimensions
            .ok_or_else(|| malformed("vector index", "`dimensions` must be a positive integer"))?,
        filter_fields: strings(obj, "filterFields", "vector index")?,
    })
}

/// Absent or `null` (older exports, or `stagedDocumentType` when unset)
/// means no validator.
fn optional_validator(
    obj: &Map<String, Json>,
    key: &str,
) -> Result<Option<Validator>, SchemaError> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(j) => Validator::from_json(j).map(Some),
    }
}

/// Index lists missing from older exports are treated as empty.
fn list<T>(
    obj: &Map<String, Json>,
    key: &str,
    parse: impl Fn(&Map<String, Json>) -> Result<T, SchemaError>,
) -> Result<Vec<T>, SchemaError> {
    match obj.get(key) {
        None => Ok(Vec::new()),
        Some(_) => array(obj, key, "table")?
            .iter()
            .map(|j| parse(as_object(j, "index")?))
            .collect(),
    }
}

fn as_object<'a>(j: &'a Json, what: &'static str) -> Result<&'a Map<String, Json>, SchemaError> {
    j.as_object()
        .ok_or_else(|| malformed(what, &format!("expected a JSON object, found `{j}`")))
}

fn array<'a>(
    obj: &'a Map<String, Json>,
    key: &str,
    what: &'static str,
) -> Result<&'a Vec<Json>, SchemaError> {
    obj.get(key)
        .and_then(Json::as_array)
        .ok_or_else(|| malformed(what, &format!("missing array field `{key}`")))
}

fn string(obj: &Map<String, Json>, key: &str, what: &'static str) -> Result<String, SchemaError> {
    obj.get(key)
        .and_then(Json::as_str)
        .map(str::to_owned)
        .ok_or_else(|| malformed(what, &format!("missing string field `{key}`")))
}

fn strings(
    obj: &Map<String, Json>,
    key: &str,
    what: &'static str,
) -> Result<Vec<String>, SchemaError> {
    let items = array(obj, key, what)?;
    items
        .iter()
        .map(|j| j.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| malformed(what, &format!("`{key}` must be an array of strings")))
}

fn malformed(what: &'static str, message: &str) -> SchemaError {
    SchemaError::Malformed {
        what,
        message: message.to_owned(),
    }
}

fn in_table(table: &str, source: SchemaError) -> SchemaError {
    SchemaError::InTable {
        table: table.to_owned(),
        source: Box::new(source),
    }
}
