//! Schema exports: the npm package's real output and Convex's schema rules.

use std::collections::BTreeMap;

use convect_schema::{
    DatabaseSchema, DocumentId, IndexDefinition, SchemaError, SearchIndexDefinition, Validator,
    Value, VectorIndexDefinition,
};
use serde_json::{json, Value as Json};

use crate::{obj, s};

const EXPORT: &str = include_str!("../fixtures/schema_export.json");

fn index(name: &str, fields: &[&str]) -> IndexDefinition {
    IndexDefinition {
        name: name.into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
    }
}

#[test]
fn parses_npm_package_export() {
    let schema = DatabaseSchema::from_export_json(EXPORT).unwrap();
    assert!(schema.schema_validation);
    assert_eq!(
        schema.tables.keys().collect::<Vec<_>>(),
        ["blobs", "messages", "specials", "users"]
    );
    let users = &schema.tables["users"];
    assert_eq!(
        users.indexes,
        [
            index("by_email", &["email"]),
            index("by_name_age", &["name", "age"]),
            index("by_city", &["address.city"])
        ]
    );
    assert_eq!(users.staged_indexes, [index("by_staged", &["admin"])]);
    assert_eq!(
        users.search_indexes,
        [SearchIndexDefinition {
            name: "search_name".into(),
            search_field: "name".into(),
            filter_fields: vec!["admin".into()]
        }]
    );
    assert_eq!(
        users.vector_indexes,
        [VectorIndexDefinition {
            name: "by_embedding".into(),
            vector_field: "embedding".into(),
            dimensions: 1536,
            filter_fields: vec!["name".into()]
        }]
    );
    assert_eq!(schema.tables["blobs"].document_type, Some(Validator::Any));
    assert!(matches!(
        schema.tables["messages"].document_type,
        Some(Validator::Union(_))
    ));
    assert!(schema.tables["specials"].staged_document_type.is_some());
    assert!(schema.tables["users"].staged_document_type.is_none());
}

#[test]
fn document_validator_adds_system_fields() {
    let schema = DatabaseSchema::from_export_json(EXPORT).unwrap();
    let ids: BTreeMap<String, u32> = [("users".to_owned(), 1), ("messages".to_owned(), 2)]
        .into_iter()
        .collect();
    let author = DocumentId {
        table_number: 1,
        internal_id: [1; 16],
    }
    .encode();
    let own_id = DocumentId {
        table_number: 2,
        internal_id: [2; 16],
    }
    .encode();
    let message = obj([
        ("kind", s("text")),
        ("body", s("hi")),
        ("author", s(&author)),
        ("_id", s(&own_id)),
        ("_creationTime", Value::Float64(1.7e12)),
    ]);
    let validator = schema.tables["messages"]
        .document_validator("messages")
        .unwrap();
    assert_eq!(validator.check(&message, &ids), Ok(()));
    let user_body = schema.tables["messages"].document_type.as_ref().unwrap();
    assert!(
        user_body.check(&message, &ids).is_err(),
        "system fields are not part of document_type"
    );
}

fn table(name: &str, extra: Json) -> Json {
    let mut t = json!({"tableName": name, "indexes": [], "documentType": {"type": "any"}});
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    t
}

fn schema_error(tables: Vec<Json>) -> String {
    let export = json!({"tables": tables, "schemaValidation": false}).to_string();
    DatabaseSchema::from_export_json(&export)
        .unwrap_err()
        .to_string()
}

fn indexes(list: Json) -> Json {
    json!({"indexes": list})
}

#[test]
fn older_exports_and_disabled_validation() {
    let export = json!({"tables": [{"tableName": "t", "indexes": [{"indexDescriptor": "by_a", "fields": ["a"]}]}],
        "schemaValidation": false});
    let schema = DatabaseSchema::from_export_json(&export.to_string()).unwrap();
    assert!(!schema.schema_validation);
    assert_eq!(schema.tables["t"].document_type, None);
    assert!(schema.tables["t"].search_indexes.is_empty());
}

#[test]
fn rejects_bad_table_names_and_duplicates() {
    assert_eq!(
        schema_error(vec![table("_t", json!({}))]),
        "invalid table name `_t`: names starting with `_` are reserved for system tables"
    );
    assert_eq!(
        schema_error(vec![table("9t", json!({}))]),
        "invalid table name `9t`: identifiers must start with a letter"
    );
    assert_eq!(
        schema_error(vec![table("t", json!({})), table("t", json!({}))]),
        "table `t` is defined more than once"
    );
}

#[test]
fn rejects_reserved_and_duplicate_index_names() {
    let by_id = indexes(json!([{"indexDescriptor": "by_id", "fields": ["a"]}]));
    assert_eq!(
        schema_error(vec![table("t", by_id)]),
        "in table `t`: invalid index name `by_id`: the name is reserved; index names may not start with `_` or be `by_id` or `by_creation_time`"
    );
    let underscore = indexes(json!([{"indexDescriptor": "_x", "fields": ["a"]}]));
    assert!(schema_error(vec![table("t", underscore)]).contains("the name is reserved"));
    let dup = json!({"indexes": [{"indexDescriptor": "i", "fields": ["a"]}],
        "searchIndexes": [{"indexDescriptor": "i", "searchField": "b", "filterFields": []}]});
    assert_eq!(
        schema_error(vec![table("t", dup)]),
        "in table `t`: there are two or more definitions of index `i`"
    );
}

#[test]
fn rejects_bad_index_fields() {
    let err = |fields: Json| {
        schema_error(vec![table(
            "t",
            indexes(json!([{"indexDescriptor": "i", "fields": fields}])),
        )])
    };
    assert_eq!(
        err(json!([])),
        "in table `t`: index `i`: an index must have at least one field"
    );
    assert_eq!(
        err(json!(["a", "_creationTime"])),
        "in table `t`: index `i`: invalid field `_creationTime`: `_creationTime` is automatically added to the end of each index and must not be listed explicitly"
    );
    assert!(err(json!(["_id"])).contains("to load documents by ID, use `db.get(id)`"));
    assert!(err(json!(["_other"]))
        .contains("reserved fields (starting with `_`) are not allowed in indexes"));
    assert_eq!(
        err(json!(["a", "a"])),
        "in table `t`: index `i`: field `a` appears more than once; index fields must be unique"
    );
    assert!(err(json!(["a..b"])).contains("field names may not be empty"));
    let seventeen: Vec<String> = (0..17).map(|i| format!("f{i}")).collect();
    assert!(err(json!(seventeen)).contains("at most 16 fields"));
}

#[test]
fn rejects_redundant_and_excess_indexes() {
    let same = indexes(
        json!([{"indexDescriptor": "i", "fields": ["a"]}, {"indexDescriptor": "j", "fields": ["a"]}]),
    );
    assert_eq!(
        schema_error(vec![table("t", same)]),
        "in table `t`: indexes `i` and `j` have the same fields; indexes must be unique within a table"
    );
    let many: Vec<Json> = (0..33)
        .map(|i| json!({"indexDescriptor": format!("i{i}"), "fields": [format!("f{i}")]}))
        .collect();
    assert_eq!(
        schema_error(vec![table("t", indexes(json!(many)))]),
        "in table `t`: 33 indexes are defined; a table may have at most 32"
    );
}

#[test]
fn rejects_bad_search_and_vector_indexes() {
    let vector = json!({"vectorIndexes": [{"indexDescriptor": "v", "vectorField": "e", "dimensions": 1, "filterFields": []}]});
    assert_eq!(
        schema_error(vec![table("t", vector)]),
        "in table `t`: index `v`: `dimensions` is 1, but must be between 2 and 4096"
    );
    let search = json!({"searchIndexes": [
        {"indexDescriptor": "s1", "searchField": "body", "filterFields": []},
        {"indexDescriptor": "s2", "searchField": "body", "filterFields": ["a"]}]});
    assert!(schema_error(vec![table("t", search)])
        .contains("index `s2`: it has the same `searchField` as index `s1`"));
    let bad_filter = json!({"searchIndexes": [{"indexDescriptor": "s", "searchField": "body", "filterFields": ["$a"]}]});
    assert!(schema_error(vec![table("t", bad_filter)]).contains("invalid field `$a`"));
}

#[test]
fn rejects_non_object_documents() {
    let strings = json!({"documentType": {"type": "string"}});
    assert_eq!(
        schema_error(vec![table("t", strings)]),
        "in table `t`: invalid document validator: a table's documents must be objects, a union of objects, or v.any(), not v.string()"
    );
    let system = json!({"documentType": {"type": "object", "value": {"_x": {"fieldType": {"type": "null"}, "optional": true}}}});
    assert!(schema_error(vec![table("t", system)])
        .contains("field `_x`: top-level field names starting with `_` are reserved"));
    let bad_validator =
        json!({"documentType": {"type": "object", "value": {"a": {"fieldType": {"type": "wat"}}}}});
    assert_eq!(
        schema_error(vec![table("t", bad_validator)]),
        "in table `t`: invalid validator for the value at path .a: unknown validator type `wat`"
    );
}

#[test]
fn rejects_malformed_exports() {
    assert!(matches!(
        DatabaseSchema::from_export_json("nope"),
        Err(SchemaError::Json(_))
    ));
    assert_eq!(
        DatabaseSchema::from_export_json("{}")
            .unwrap_err()
            .to_string(),
        "malformed schema: missing array field `tables`"
    );
    assert_eq!(
        schema_error(vec![
            json!({"tableName": "t", "indexes": [{"fields": ["a"]}]})
        ]),
        "in table `t`: malformed index: missing string field `indexDescriptor`"
    );
    assert_eq!(
        schema_error(vec![json!({"indexes": []})]),
        "malformed table: missing string field `tableName`"
    );
}
