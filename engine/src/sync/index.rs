//! `SubscriptionIndex`: which live queries read which index-key intervals, so a
//! commit's written keys find exactly the queries they may affect without
//! re-running the others. One balanced interval tree per index, on a thread of its
//! own because the tree type is not `Send`.

use crate::storage::KeyRange;
use crate::txn::ReadSet;
use crate::types::IndexId;
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::mpsc;
use store_interval_tree::{Interval, IntervalTree};
use tokio::sync::oneshot;

/// Identifies one shared subscription.
pub type SubId = u64;

enum Op {
    Set(SubId, ReadSet),
    Remove(SubId),
    Match(Vec<(IndexId, Vec<u8>)>, oneshot::Sender<HashSet<SubId>>),
}

#[derive(Clone)]
pub struct SubscriptionIndex {
    ops: mpsc::Sender<Op>,
}

impl SubscriptionIndex {
    pub fn start() -> SubscriptionIndex {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("subscription-index".into())
            .spawn(move || Trees::default().run(rx))
            .expect("spawn subscription index thread");
        SubscriptionIndex { ops: tx }
    }

    /// Replaces the intervals `sub` depends on.
    pub fn set(&self, sub: SubId, reads: ReadSet) {
        let _ = self.ops.send(Op::Set(sub, reads));
    }

    pub fn remove(&self, sub: SubId) {
        let _ = self.ops.send(Op::Remove(sub));
    }

    /// The subscriptions whose intervals contain any of `keys`.
    pub async fn matching(&self, keys: Vec<(IndexId, Vec<u8>)>) -> HashSet<SubId> {
        let (tx, rx) = oneshot::channel();
        if self.ops.send(Op::Match(keys, tx)).is_err() {
            return HashSet::new();
        }
        rx.await.unwrap_or_default()
    }
}

fn interval(range: &KeyRange) -> Interval<Vec<u8>> {
    let end = match &range.end {
        Some(e) => Bound::Excluded(e.clone()),
        None => Bound::Unbounded,
    };
    Interval::new(Bound::Included(range.start.clone()), end)
}

#[derive(Default)]
struct Trees {
    trees: HashMap<IndexId, IntervalTree<Vec<u8>, HashSet<SubId>>>,
    /// What each subscription registered, to undo it.
    registered: HashMap<SubId, Vec<(IndexId, KeyRange)>>,
}

impl Trees {
    fn run(mut self, rx: mpsc::Receiver<Op>) {
        while let Ok(op) = rx.recv() {
            match op {
                Op::Set(sub, reads) => {
                    self.remove(sub);
                    self.add(sub, reads);
                }
                Op::Remove(sub) => self.remove(sub),
                Op::Match(keys, reply) => {
                    let _ = reply.send(self.matching(&keys));
                }
            }
        }
    }

    fn add(&mut self, sub: SubId, reads: ReadSet) {
        let mut mine = Vec::new();
        for (index, range) in reads.intervals() {
            let tree = self.trees.entry(*index).or_default();
            let iv = interval(range);
            let mut existing = tree.query(&iv).find(|e| *e.interval() == iv).map(|e| e.value().clone()).unwrap_or_default();
            if existing.insert(sub) {
                tree.delete(&iv);
                tree.insert(iv, existing);
            }
            mine.push((*index, range.clone()));
        }
        self.registered.insert(sub, mine);
    }

    fn remove(&mut self, sub: SubId) {
        let Some(ranges) = self.registered.remove(&sub) else { return };
        for (index, range) in ranges {
            let Some(tree) = self.trees.get_mut(&index) else { continue };
            let iv = interval(&range);
            let Some(mut subs) = tree.query(&iv).find(|e| *e.interval() == iv).map(|e| e.value().clone()) else { continue };
            tree.delete(&iv);
            subs.remove(&sub);
            if !subs.is_empty() {
                tree.insert(iv, subs);
            }
        }
    }

    fn matching(&self, keys: &[(IndexId, Vec<u8>)]) -> HashSet<SubId> {
        let mut out = HashSet::new();
        for (index, key) in keys {
            let Some(tree) = self.trees.get(index) else { continue };
            let point = Interval::point(key.clone());
            for entry in tree.query(&point) {
                out.extend(entry.value().iter().copied());
            }
        }
        out
    }
}
