//! `WriteLog`: a transaction's pending document writes, keyed by document, with the
//! version each replaced, so that index entries can be computed at commit.

use crate::types::Document;
use convect_schema::DocumentId;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct PendingWrite {
    /// The version at the transaction's snapshot (None if inserted by it).
    pub old: Option<Document>,
    /// The version after the transaction (None if deleted).
    pub new: Option<Document>,
}

#[derive(Debug, Clone, Default)]
pub struct WriteLog {
    writes: BTreeMap<DocumentId, PendingWrite>,
}

impl WriteLog {
    pub fn get(&self, id: &DocumentId) -> Option<&PendingWrite> {
        self.writes.get(id)
    }

    /// Records a new version of `id`; `old` is used only on the first write.
    pub fn put(&mut self, id: DocumentId, old: Option<Document>, new: Option<Document>) {
        self.writes.entry(id).or_insert(PendingWrite { old, new: None }).new = new;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&DocumentId, &PendingWrite)> {
        self.writes.iter()
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}
