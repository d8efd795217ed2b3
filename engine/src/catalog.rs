//! The catalog: which tables and indexes exist, in memory, mirroring what the
//! committer persisted. Index field lists include the `_creationTime`/`_id`
//! tie-breakers, so computing an index key is the same for every index.

use crate::storage::{CatalogWrite, IndexRecord, PersistedState, TableRecord};
use crate::types::{Document, IndexId};
use convect_schema::{encode_index_key, get_field_path};
use std::collections::{BTreeMap, HashMap};

pub const BY_ID: &str = "by_id";
pub const BY_CREATION_TIME: &str = "by_creation_time";

/// A virtual index over table names, never stored. Reading a table that does not
/// exist yet reads its name here, and every insert writes its table's name, so a
/// read of a missing table conflicts with (and re-runs on) the first document
/// that appears in it, whichever transaction created the table. Real index ids
/// start at 1.
pub const TABLE_NAMES: IndexId = 0;

/// The key of `table` in [`TABLE_NAMES`].
pub fn table_name_key(table: &str) -> Vec<u8> {
    encode_index_key(&[Some(&convect_schema::Value::String(table.to_owned()))])
}

#[derive(Debug, Clone)]
pub struct IndexMeta {
    pub id: IndexId,
    pub table_number: u32,
    pub name: String,
    /// Full key fields, tie-breakers included.
    pub fields: Vec<String>,
}

impl IndexMeta {
    /// The index key of `doc` in this index.
    pub fn key_of(&self, doc: &Document) -> Vec<u8> {
        let values: Vec<_> = self.fields.iter().map(|f| get_field_path(&doc.value, f)).collect();
        encode_index_key(&values)
    }

    /// The fields a user names in `withIndex` ranges (tie-breakers excluded).
    pub fn user_fields(&self) -> &[String] {
        match self.name.as_str() {
            BY_ID => &self.fields,
            _ => &self.fields[..self.fields.len() - 2],
        }
    }
}

/// Full key fields for an index declared on `fields`.
pub fn index_key_fields(name: &str, fields: &[String]) -> Vec<String> {
    match name {
        BY_ID => vec!["_id".into()],
        _ => fields.iter().cloned().chain(["_creationTime".into(), "_id".into()]).collect(),
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tables: BTreeMap<String, u32>,
    table_names: HashMap<u32, String>,
    indexes: HashMap<u32, Vec<IndexMeta>>,
    next_table: u32,
    next_index: IndexId,
}

impl Catalog {
    pub fn from_persisted(state: &PersistedState) -> Self {
        let mut c = Catalog { next_table: 1, next_index: 1, ..Default::default() };
        for t in &state.tables {
            c.add_table(t);
        }
        for i in &state.indexes {
            c.add_index(i);
        }
        c
    }

    pub fn add_table(&mut self, t: &TableRecord) {
        self.tables.insert(t.name.clone(), t.number);
        self.table_names.insert(t.number, t.name.clone());
        self.indexes.entry(t.number).or_default();
        self.next_table = self.next_table.max(t.number + 1);
    }

    pub fn add_index(&mut self, i: &IndexRecord) {
        let meta = IndexMeta { id: i.id, table_number: i.table_number, name: i.name.clone(), fields: i.fields.clone() };
        self.indexes.entry(i.table_number).or_default().push(meta);
        self.next_index = self.next_index.max(i.id + 1);
    }

    pub fn remove_index(&mut self, id: IndexId) {
        for list in self.indexes.values_mut() {
            list.retain(|i| i.id != id);
        }
    }

    pub fn table_number(&self, name: &str) -> Option<u32> {
        self.tables.get(name).copied()
    }

    pub fn table_name(&self, number: u32) -> Option<&str> {
        self.table_names.get(&number).map(String::as_str)
    }

    /// User tables: system tables (`_storage`, ...) are the engine's own, and
    /// no schema declares them.
    pub fn user_table_names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str).filter(|t| !t.starts_with('_'))
    }

    /// The table an index belongs to (none for the virtual `TABLE_NAMES`).
    pub fn table_of_index(&self, id: IndexId) -> Option<&str> {
        let (number, _) = self.indexes.iter().find(|(_, list)| list.iter().any(|i| i.id == id))?;
        self.table_name(*number)
    }

    pub fn indexes(&self, table_number: u32) -> &[IndexMeta] {
        self.indexes.get(&table_number).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn index(&self, table_number: u32, name: &str) -> Option<&IndexMeta> {
        self.indexes(table_number).iter().find(|i| i.name == name)
    }

    /// Records for a new table and its two implicit indexes, with fresh numbers.
    pub fn plan_table(&self, name: &str) -> (TableRecord, Vec<IndexRecord>) {
        let table = TableRecord { number: self.next_table, name: name.to_owned() };
        let indexes = [BY_ID, BY_CREATION_TIME]
            .iter()
            .enumerate()
            .map(|(n, index)| IndexRecord {
                id: self.next_index + n as IndexId,
                table_number: table.number,
                name: (*index).to_owned(),
                fields: index_key_fields(index, &[]),
            })
            .collect();
        (table, indexes)
    }

    /// Creates the system table `table` with `indexes` (name, fields) where
    /// missing, applying them here too; returns the writes that persist them.
    pub fn plan_system_table(&mut self, table: &str, indexes: &[(&str, &[&str])]) -> Vec<CatalogWrite> {
        let mut writes = Vec::new();
        let number = match self.table_number(table) {
            Some(n) => n,
            None => {
                let (t, implicit) = self.plan_table(table);
                self.add_table(&t);
                implicit.iter().for_each(|i| self.add_index(i));
                writes.push(CatalogWrite::CreateTable(t.clone()));
                writes.extend(implicit.into_iter().map(CatalogWrite::CreateIndex));
                t.number
            }
        };
        for (name, fields) in indexes {
            if self.index(number, name).is_none() {
                let fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
                let record = self.plan_index(number, name, &fields, 0);
                self.add_index(&record);
                writes.push(CatalogWrite::CreateIndex(record));
            }
        }
        writes
    }

    pub fn plan_index(&self, table_number: u32, name: &str, fields: &[String], offset: IndexId) -> IndexRecord {
        IndexRecord {
            id: self.next_index + offset,
            table_number,
            name: name.to_owned(),
            fields: index_key_fields(name, fields),
        }
    }
}

impl convect_schema::IdTables for Catalog {
    fn table_number(&self, table_name: &str) -> Option<u32> {
        Catalog::table_number(self, table_name)
    }
}
