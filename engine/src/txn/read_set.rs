//! `ReadSet`: the index-key intervals a function read. It is conservative: a write
//! that could change a result always falls in some interval, while a write outside
//! every interval provably cannot.

use crate::storage::KeyRange;
use crate::types::IndexId;

#[derive(Debug, Clone, Default)]
pub struct ReadSet {
    intervals: Vec<(IndexId, KeyRange)>,
}

impl ReadSet {
    pub fn record(&mut self, index: IndexId, range: KeyRange) {
        if !range.is_empty() {
            self.intervals.push((index, range));
        }
    }

    pub fn record_point(&mut self, index: IndexId, key: Vec<u8>) {
        let mut end = key.clone();
        end.push(0);
        self.intervals.push((index, KeyRange { start: key, end: Some(end) }));
    }

    pub fn intervals(&self) -> &[(IndexId, KeyRange)] {
        &self.intervals
    }

    /// Whether a write of `key` in `index` could change what was read.
    pub fn overlaps(&self, index: IndexId, key: &[u8]) -> bool {
        self.intervals.iter().any(|(i, r)| *i == index && r.contains(key))
    }

    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }
}
