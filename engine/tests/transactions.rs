//! Engine-level tests of the transaction layer over real SQLite storage: MVCC
//! snapshot reads (documents and index entries), optimistic concurrency control in
//! the committer (including reads of tables that do not exist yet),
//! read-your-writes inside a transaction, and durability across a reopen of the
//! same database file.

mod common;

use common::*;
use convect_engine::catalog::{table_name_key, TABLE_NAMES};
use convect_engine::committer::CommitError;
use convect_engine::storage::{KeyRange, Persistence};
use convect_engine::types::{Order, Timestamp};
use convect_schema::Value;
use serde_json::json;
use std::collections::BTreeMap;

fn patch_of(pairs: &[(&str, Option<Value>)]) -> BTreeMap<String, Option<Value>> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn xs(docs: &[convect_engine::types::Document]) -> Vec<i64> {
    docs.iter().map(|d| int_field(d, "x")).collect()
}

fn all_by_x(order: &str) -> serde_json::Value {
    index_query("t.by_x", json!([]), order, json!([]))
}

fn eq_x(v: i64) -> serde_json::Value {
    index_query("t.by_x", json!([{"type": "Eq", "fieldPath": "x", "value": enc(&int(v))}]), "asc", json!([]))
}

#[test]
fn mvcc_snapshots_documents_and_index_entries() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(&dir.path().join("db.sqlite3"));
    let by_x = h.create_index("t", "by_x", &["x"]);

    let (ids, ts1) = h.insert_all("t", vec![obj(&[("x", int(1))]), obj(&[("x", int(5))])]);
    let (a, b) = (ids[0], ids[1]);
    let mut at_ts1 = h.begin();
    assert_eq!(at_ts1.snapshot(), ts1);

    let mut txn = h.begin();
    txn.patch(a, patch_of(&[("x", Some(int(2)))])).unwrap();
    let ts2 = h.commit(txn).unwrap();
    let mut txn = h.begin();
    txn.delete(b).unwrap();
    let ts3 = h.commit(txn).unwrap();
    let (c, ts4) = h.insert_all("t", vec![obj(&[("x", int(3))])]);
    let c = c[0];
    assert!(ts1 < ts2 && ts2 < ts3 && ts3 < ts4, "{ts1} {ts2} {ts3} {ts4}");
    assert_eq!(h.latest(), ts4);

    // Document versions are visible exactly from their commit timestamp.
    let x_at = |id, ts: Timestamp| h.store.get_document(id, ts).unwrap().map(|d| int_field(&d, "x"));
    assert_eq!(x_at(a, ts1 - 1), None);
    assert_eq!(x_at(a, ts1), Some(1));
    assert_eq!(x_at(a, ts2 - 1), Some(1));
    assert_eq!(x_at(a, ts2), Some(2));
    assert_eq!(x_at(a, ts4), Some(2));
    assert_eq!(x_at(b, ts3 - 1), Some(5));
    assert_eq!(x_at(b, ts3), None);
    assert_eq!(x_at(c, ts4 - 1), None);
    assert_eq!(x_at(c, ts4), Some(3));

    // Index entries: the old key of the updated field disappears at ts2, the new one appears.
    let keys_at = |ts: Timestamp| {
        h.store
            .scan_index(by_x.id, &KeyRange::all(), Order::Asc, ts, 100)
            .unwrap()
            .into_iter()
            .map(|hit| (hit.key, hit.doc_id))
            .collect::<Vec<_>>()
    };
    let doc_at = |id, ts| h.store.get_document(id, ts).unwrap().unwrap();
    let (a1, a2, b5, c3) = (doc_at(a, ts1), doc_at(a, ts2), doc_at(b, ts1), doc_at(c, ts4));
    let (ka1, ka2, kb5, kc3) = (by_x.key_of(&a1), by_x.key_of(&a2), by_x.key_of(&b5), by_x.key_of(&c3));
    assert_ne!(ka1, ka2);
    assert_eq!(keys_at(ts1 - 1), vec![]);
    assert_eq!(keys_at(ts1), vec![(ka1.clone(), a), (kb5.clone(), b)]);
    assert_eq!(keys_at(ts2 - 1), vec![(ka1.clone(), a), (kb5.clone(), b)]);
    assert_eq!(keys_at(ts2), vec![(ka2.clone(), a), (kb5.clone(), b)]);
    assert_eq!(keys_at(ts3), vec![(ka2.clone(), a)]);
    assert_eq!(keys_at(ts4), vec![(ka2.clone(), a), (kc3, c)]);
    assert_eq!(h.store.scan_index(by_x.id, &KeyRange::all(), Order::Desc, ts2, 100).unwrap().len(), 2);

    // A transaction at the old snapshot sees none of the later commits, through gets and scans.
    assert_eq!(at_ts1.get(a).unwrap().map(|d| int_field(&d, "x")), Some(1));
    assert!(at_ts1.get(b).unwrap().is_some());
    assert!(at_ts1.get(c).unwrap().is_none());
    assert_eq!(xs(&run_query(&mut at_ts1, &all_by_x("asc"))), vec![1, 5]);
    assert_eq!(xs(&run_query(&mut at_ts1, &eq_x(1))), vec![1]);
    assert_eq!(run_query(&mut at_ts1, &eq_x(2)).len(), 0);
    let full_scan = json!({"source": {"type": "FullTableScan", "tableName": "t", "order": "asc"}, "operators": []});
    assert_eq!(xs(&run_query(&mut at_ts1, &full_scan)), vec![1, 5]);
    assert_eq!(at_ts1.count("t").unwrap(), 2);

    // The latest snapshot sees all of them.
    let mut now = h.begin();
    assert_eq!(xs(&run_query(&mut now, &all_by_x("asc"))), vec![2, 3]);
    assert_eq!(xs(&run_query(&mut now, &all_by_x("desc"))), vec![3, 2]);
    assert_eq!(run_query(&mut now, &eq_x(1)).len(), 0);
    assert_eq!(xs(&run_query(&mut now, &eq_x(2))), vec![2]);
    assert_eq!(xs(&run_query(&mut now, &full_scan)), vec![2, 3]);
    assert_eq!(now.count("t").unwrap(), 2);
    assert!(now.get(b).unwrap().is_none());
}

#[test]
fn occ_conflicts_and_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(&dir.path().join("db.sqlite3"));
    h.create_index("t", "by_x", &["x"]);
    let (ids, ts0) = h.insert_all("t", vec![obj(&[("x", int(1))]), obj(&[("x", int(2))])]);
    let (a, b) = (ids[0], ids[1]);
    let mut stamps = vec![ts0];

    // Two transactions read and write the same document: the second conflicts.
    let mut t1 = h.begin();
    let mut t2 = h.begin();
    let x1 = int_field(&t1.get(a).unwrap().unwrap(), "x");
    let x2 = int_field(&t2.get(a).unwrap().unwrap(), "x");
    t1.patch(a, patch_of(&[("x", Some(int(x1 + 10)))])).unwrap();
    t2.patch(a, patch_of(&[("x", Some(int(x2 + 100)))])).unwrap();
    stamps.push(h.commit(t1).unwrap());
    assert!(matches!(h.commit(t2), Err(CommitError::Conflict { .. })));
    // The loser's write did not land; a retry sees the winner's value and commits.
    let mut retry = h.begin();
    let x = int_field(&retry.get(a).unwrap().unwrap(), "x");
    assert_eq!(x, 11);
    retry.patch(a, patch_of(&[("x", Some(int(x + 100)))])).unwrap();
    stamps.push(h.commit(retry).unwrap());
    assert_eq!(int_field(&h.begin().get(a).unwrap().unwrap(), "x"), 111);

    // Blind writes to the same document conflict too (each write reads what it replaces).
    let mut t1 = h.begin();
    let mut t2 = h.begin();
    t1.patch(b, patch_of(&[("y", Some(int(1)))])).unwrap();
    t2.patch(b, patch_of(&[("z", Some(int(1)))])).unwrap();
    stamps.push(h.commit(t1).unwrap());
    assert!(matches!(h.commit(t2), Err(CommitError::Conflict { .. })));

    // Disjoint writes from concurrent transactions both commit.
    let mut t3 = h.begin();
    let mut t4 = h.begin();
    assert!(t3.get(a).unwrap().is_some());
    assert!(t4.get(b).unwrap().is_some());
    t3.patch(a, patch_of(&[("w", Some(int(3)))])).unwrap();
    t4.patch(b, patch_of(&[("w", Some(int(4)))])).unwrap();
    stamps.push(h.commit(t3).unwrap());
    stamps.push(h.commit(t4).unwrap());
    let mut check = h.begin();
    assert_eq!(check.get(a).unwrap().unwrap().value.get("w"), Some(&int(3)));
    assert_eq!(check.get(b).unwrap().unwrap().value.get("w"), Some(&int(4)));

    // A phantom: an index range read empty, then someone inserts into it.
    let mut reader = h.begin();
    assert!(run_query(&mut reader, &eq_x(7)).is_empty());
    reader.insert("t", obj(&[("x", int(1000))])).unwrap();
    stamps.push(h.insert_all("t", vec![obj(&[("x", int(7))])]).1);
    assert!(matches!(h.commit(reader), Err(CommitError::Conflict { .. })));
    // ... while an insert outside the range read does not conflict.
    let mut reader = h.begin();
    assert!(run_query(&mut reader, &eq_x(8)).is_empty());
    reader.insert("t", obj(&[("x", int(1001))])).unwrap();
    stamps.push(h.insert_all("t", vec![obj(&[("x", int(9))])]).1);
    stamps.push(h.commit(reader).unwrap());

    // Read-only transactions with stale snapshots still commit, whether or not later
    // commits touched what they read: they are serializable at their snapshot.
    let mut ro_unrelated = h.begin();
    let mut ro_overwritten = h.begin();
    let stale = ro_unrelated.snapshot();
    assert!(ro_unrelated.get(b).unwrap().is_some());
    assert_eq!(xs(&run_query(&mut ro_overwritten, &eq_x(111))), vec![111]);
    let mut w = h.begin();
    w.patch(a, patch_of(&[("x", Some(int(112)))])).unwrap();
    stamps.push(h.commit(w).unwrap());
    assert!(h.latest() > stale);
    let ts = h.commit(ro_unrelated).expect("stale read-only transaction commits");
    assert!(ts <= h.latest());
    let ts = h.commit(ro_overwritten).expect("read-only transaction whose reads were overwritten commits");
    assert!(ts <= h.latest());

    // Many commits submitted at once (group commit) get distinct, increasing timestamps.
    let prepared: Vec<_> = (0..64)
        .map(|i| {
            let mut t = h.begin();
            t.insert("t", obj(&[("x", int(10_000 + i))])).unwrap();
            t.prepare()
        })
        .collect();
    let committer = h.committer.clone();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let burst: Vec<Timestamp> = rt.block_on(async move {
        let handles: Vec<_> = prepared.into_iter().map(|p| tokio::spawn({
            let c = committer.clone();
            async move { c.commit(p).await }
        })).collect();
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.unwrap().expect("insert-only commits never conflict"));
        }
        out
    });
    let mut sorted = burst.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), burst.len(), "timestamps are distinct");
    assert!(sorted[0] > *stamps.last().unwrap());
    stamps.extend(sorted);
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "timestamps strictly increase: {stamps:?}");
    assert_eq!(h.latest(), *stamps.last().unwrap());
    assert_eq!(h.begin().count("t").unwrap(), 2 + 1 + 1 + 1 + 64);
}

#[test]
fn read_your_writes_inside_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(&dir.path().join("db.sqlite3"));
    h.create_index("t", "by_x", &["x"]);
    let (ids, _) = h.insert_all("t", (1..=5).map(|i| obj(&[("x", int(i))])).collect());
    let mut other = h.begin();

    let mut txn = h.begin();
    let new = txn.insert("t", obj(&[("x", int(10))])).unwrap();
    assert_eq!(int_field(&txn.get(new).unwrap().unwrap(), "x"), 10);
    assert_eq!(xs(&run_query(&mut txn, &all_by_x("asc"))), vec![1, 2, 3, 4, 5, 10]);
    assert_eq!(txn.count("t").unwrap(), 6);

    // A patched indexed field moves within the scan.
    txn.patch(ids[0], patch_of(&[("x", Some(int(7)))])).unwrap();
    assert_eq!(xs(&run_query(&mut txn, &all_by_x("asc"))), vec![2, 3, 4, 5, 7, 10]);
    assert_eq!(xs(&run_query(&mut txn, &all_by_x("desc"))), vec![10, 7, 5, 4, 3, 2]);
    assert!(run_query(&mut txn, &eq_x(1)).is_empty());
    assert_eq!(run_query(&mut txn, &eq_x(7))[0].id, ids[0]);
    // Patching the transaction's own insert, too.
    txn.patch(new, patch_of(&[("x", Some(int(0)))])).unwrap();
    assert_eq!(xs(&run_query(&mut txn, &all_by_x("asc"))), vec![0, 2, 3, 4, 5, 7]);

    // A deleted document disappears from gets and scans, including with a limit.
    txn.delete(ids[1]).unwrap();
    assert!(txn.get(ids[1]).unwrap().is_none());
    assert_eq!(xs(&run_query(&mut txn, &all_by_x("asc"))), vec![0, 3, 4, 5, 7]);
    txn.delete(new).unwrap();
    assert!(txn.get(new).unwrap().is_none());
    assert_eq!(xs(&run_query(&mut txn, &all_by_x("asc"))), vec![3, 4, 5, 7]);
    let take2 = |order| index_query("t.by_x", json!([]), order, json!([{"limit": 2}]));
    assert_eq!(xs(&run_query(&mut txn, &take2("asc"))), vec![3, 4]);
    assert_eq!(xs(&run_query(&mut txn, &take2("desc"))), vec![7, 5]);
    let range = index_query(
        "t.by_x",
        json!([{"type": "Gt", "fieldPath": "x", "value": enc(&int(3))}, {"type": "Lte", "fieldPath": "x", "value": enc(&int(7))}]),
        "asc",
        json!([]),
    );
    assert_eq!(xs(&run_query(&mut txn, &range)), vec![4, 5, 7]);
    let full_scan = json!({"source": {"type": "FullTableScan", "tableName": "t", "order": "asc"}, "operators": []});
    assert_eq!(run_query(&mut txn, &full_scan).len(), 4);
    assert_eq!(txn.count("t").unwrap(), 4);

    // Nothing is visible outside the transaction before it commits ...
    assert_eq!(xs(&run_query(&mut other, &all_by_x("asc"))), vec![1, 2, 3, 4, 5]);
    h.commit(txn).unwrap();
    assert_eq!(xs(&run_query(&mut other, &all_by_x("asc"))), vec![1, 2, 3, 4, 5]);
    // ... and exactly the net effect is visible after.
    let mut after = h.begin();
    assert_eq!(xs(&run_query(&mut after, &all_by_x("asc"))), vec![3, 4, 5, 7]);
    assert!(after.get(new).unwrap().is_none());
    assert_eq!(after.count("t").unwrap(), 4);
}

#[test]
fn durability_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let h = Harness::open(&path);
    let by_x = h.create_index("t", "by_x", &["x"]);
    let (ids, _) = h.insert_all("t", (1..=20).map(|i| obj(&[("x", int(i)), ("s", Value::String(format!("doc {i}")))])).collect());
    h.insert_all("u", vec![obj(&[("y", Value::Float64(1.5))])]);
    let mut txn = h.begin();
    txn.patch(ids[0], patch_of(&[("x", Some(int(100)))])).unwrap();
    txn.delete(ids[1]).unwrap();
    let patched_at = h.commit(txn).unwrap();
    let last = h.latest();
    assert_eq!(last, patched_at);
    let before: Vec<_> = run_query(&mut h.begin(), &all_by_x("asc"));
    assert_eq!(before.len(), 19);
    h.close();

    let h = Harness::open(&path);
    assert_eq!(h.loaded_max_ts, last);
    assert_eq!(h.latest(), last);
    {
        let catalog = h.catalog.read().unwrap();
        let tables: Vec<_> = catalog.user_table_names().collect();
        assert_eq!(tables, vec!["t", "u"]);
    }
    let reopened = h.index("t", "by_x");
    assert_eq!((reopened.id, &reopened.fields), (by_x.id, &by_x.fields));
    let mut txn = h.begin();
    let after = run_query(&mut txn, &all_by_x("asc"));
    assert_eq!(after, before);
    assert_eq!(*xs(&after).last().unwrap(), 100);
    assert!(txn.get(ids[1]).unwrap().is_none());
    assert_eq!(txn.get(ids[2]).unwrap().unwrap().value.get("s"), Some(&Value::String("doc 3".into())));
    // Older versions survive too.
    assert_eq!(h.store.get_document(ids[1], patched_at - 1).unwrap().map(|d| int_field(&d, "x")), Some(2));
    assert_eq!(txn.count("u").unwrap(), 1);

    // New timestamps continue after the restored maximum; new tables get fresh numbers.
    let (_, ts) = h.insert_all("t", vec![obj(&[("x", int(0))])]);
    assert!(ts > last);
    let (v_ids, ts2) = h.insert_all("v", vec![obj(&[])]);
    assert!(ts2 > ts);
    let numbers: Vec<u32> = ["t", "u"].iter().map(|t| h.catalog.read().unwrap().table_number(t).unwrap()).collect();
    assert!(!numbers.contains(&v_ids[0].table_number));
    drop(txn); // it holds the store and the committer
    h.close();

    let h = Harness::open(&path);
    assert_eq!(h.loaded_max_ts, ts2);
    assert_eq!(h.begin().count("t").unwrap(), 20);
}

/// A full table scan of `table`, as `ctx.db.query(table)` sends it.
fn scan(table: &str) -> serde_json::Value {
    json!({ "source": { "type": "FullTableScan", "tableName": table, "order": "asc" }, "operators": [] })
}

#[test]
fn reading_a_table_that_does_not_exist_conflicts_with_its_first_insert() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(&dir.path().join("db.sqlite3"));
    h.insert_all("other", vec![obj(&[("x", int(0))])]);

    // A scan and a count of missing tables, then a write elsewhere.
    let mut reader = h.begin();
    assert!(run_query(&mut reader, &scan("ghost")).is_empty());
    assert!(reader.reads.overlaps(TABLE_NAMES, &table_name_key("ghost")));
    assert_eq!(reader.count("phantom").unwrap(), 0);
    assert!(reader.reads.overlaps(TABLE_NAMES, &table_name_key("phantom")));
    reader.insert("other", obj(&[("x", int(1))])).unwrap();

    // Another transaction creates "ghost" with its first document and commits first.
    h.insert_all("ghost", vec![obj(&[("x", int(2))])]);
    assert!(matches!(h.commit(reader), Err(CommitError::Conflict { .. })));

    // Inserts into other tables leave a reader of a missing table alone.
    let mut reader = h.begin();
    assert_eq!(reader.count("phantom").unwrap(), 0);
    reader.insert("other", obj(&[("x", int(3))])).unwrap();
    h.insert_all("other", vec![obj(&[("x", int(4))])]);
    h.commit(reader).expect("no conflict with an unrelated insert");

    // Updates and deletes do not write the table's name; only inserts do.
    let mut updater = h.begin();
    let doc = run_query(&mut updater, &scan("ghost")).remove(0);
    updater.patch(doc.id, patch_of(&[("x", Some(int(5)))])).unwrap();
    let written = updater.prepare().written_keys;
    assert!(!written.iter().any(|(index, _)| *index == TABLE_NAMES));
}
