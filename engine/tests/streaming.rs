//! Streaming queries read only what they return: `take(10)` over a range of 100,000
//! documents reads about ten index rows from SQLite (and SQLite itself visits only
//! about that many, in both orders and for bounded ranges), and the transaction's
//! read set covers only the scanned prefix, so writes past it do not conflict.

mod common;

use common::*;
use convect_engine::committer::CommitError;
use convect_engine::types::Document;
use convect_engine::txn::Transaction;
use convect_schema::Value;
use serde_json::{json, Value as Json};

const DOCS: i64 = 100_000;
/// Below `MAX_WRITES` (16,000) per transaction.
const PER_COMMIT: i64 = 15_000;

fn ns(docs: &[Document]) -> Vec<i64> {
    docs.iter().map(|d| int_field(d, "n")).collect()
}

fn bound(kind: &str, n: i64) -> Json {
    json!({"type": kind, "fieldPath": "n", "value": enc(&int(n))})
}

/// Runs `query` in `txn` and returns its results with the index rows read and the
/// SQLite VM steps the scans took.
fn measured(h: &Harness, txn: &mut Transaction, query: &Json) -> (Vec<i64>, u64, u64) {
    let (rows, steps) = (h.store.index_rows_read(), h.store.index_scan_steps());
    let docs = run_query(txn, query);
    (ns(&docs), h.store.index_rows_read() - rows, h.store.index_scan_steps() - steps)
}

#[test]
fn take_ten_reads_ten_and_read_set_covers_only_the_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(&dir.path().join("db.sqlite3"));
    let by_n = h.create_index("big", "by_n", &["n"]);
    h.insert_all("side", vec![obj(&[])]);
    let started = std::time::Instant::now();
    let mut ids = Vec::new();
    for chunk in 0..(DOCS + PER_COMMIT - 1) / PER_COMMIT {
        let range = chunk * PER_COMMIT..((chunk + 1) * PER_COMMIT).min(DOCS);
        ids.extend(h.insert_all("big", range.map(|n| obj(&[("n", int(n)), ("tag", Value::String("x".into()))])).collect()).0);
    }
    eprintln!("inserted {DOCS} documents in {:?}", started.elapsed());

    // The work an unlimited scan of the whole index does, for scale.
    let mut txn = h.begin();
    let (rows_before, steps_before) = (h.store.index_rows_read(), h.store.index_scan_steps());
    let first_page = run_query(&mut txn, &index_query("big.by_n", json!([]), "asc", json!([{"limit": 2000}])));
    assert_eq!(first_page.len(), 2000);
    let steps_per_row = (h.store.index_scan_steps() - steps_before) as f64 / (h.store.index_rows_read() - rows_before) as f64;
    eprintln!("about {steps_per_row:.1} SQLite VM steps per index row");
    let step_budget = (40.0 * steps_per_row * 4.0) as u64 + 200;

    let cases: Vec<(&str, Json, &str, Vec<i64>)> = vec![
        ("gte asc", json!([bound("Gte", 50_000)]), "asc", (50_000..50_010).collect()),
        ("gt asc", json!([bound("Gt", 50_000)]), "asc", (50_001..50_011).collect()),
        ("all asc", json!([]), "asc", (0..10).collect()),
        ("all desc", json!([]), "desc", (DOCS - 10..DOCS).rev().collect()),
        ("lte desc", json!([bound("Lte", 50_000)]), "desc", (49_991..=50_000).rev().collect()),
        // An upper bound far from the end of the index: SQLite must seek to it, not
        // walk back from the last entry.
        ("lt desc near start", json!([bound("Lt", 100)]), "desc", (90..100).rev().collect()),
        ("range desc", json!([bound("Gte", 10), bound("Lte", 1_000)]), "desc", (991..=1_000).rev().collect()),
        // A bounded range followed by many keys: the scan must stop at its end.
        ("range asc near start", json!([bound("Gt", 5), bound("Lt", 9)]), "asc", vec![6, 7, 8]),
        ("eq", json!([{"type": "Eq", "fieldPath": "n", "value": enc(&int(42))}]), "asc", vec![42]),
    ];
    for (name, range, order, expected) in cases {
        let mut txn = h.begin();
        let query = index_query("big.by_n", range, order, json!([{"limit": 10}]));
        let (got, rows, steps) = measured(&h, &mut txn, &query);
        eprintln!("{name}: {rows} rows, {steps} steps");
        assert_eq!(got, expected, "{name}");
        assert!(rows <= 40, "{name}: take(10) read {rows} index rows");
        assert!(steps <= step_budget, "{name}: take(10) took {steps} SQLite VM steps (budget {step_budget})");
    }

    // The read set of a take(10) covers exactly the ten keys it scanned.
    let take10 = index_query("big.by_n", json!([bound("Gte", 50_000)]), "asc", json!([{"limit": 10}]));
    let doc_at = |txn: &mut Transaction, n: i64| txn.get(ids[n as usize]).unwrap().unwrap();
    let mut probe = h.begin();
    assert_eq!(ns(&run_query(&mut probe, &take10)), (50_000..50_010).collect::<Vec<_>>());
    let key = |txn: &mut Transaction, n: i64| by_n.key_of(&doc_at(txn, n));
    let inside: Vec<_> = [50_000, 50_005, 50_009].iter().map(|&n| key(&mut h.begin(), n)).collect();
    let outside: Vec<_> = [49_999, 50_010, 50_011, 99_999].iter().map(|&n| key(&mut h.begin(), n)).collect();
    assert!(inside.iter().all(|k| probe.reads.overlaps(by_n.id, k)));
    assert!(outside.iter().all(|k| !probe.reads.overlaps(by_n.id, k)));
    assert!(probe.reads.intervals().iter().all(|(index, _)| *index == by_n.id));

    let patch_tag = |n: i64| {
        let mut w = h.begin();
        w.patch(ids[n as usize], [("tag".to_string(), Some(Value::String(format!("w{n}"))))].into()).unwrap();
        h.commit(w).unwrap();
    };
    let insert_n = |n: i64| {
        h.insert_all("big", vec![obj(&[("n", int(n))])]);
    };
    // Each case: a writing transaction runs take(10), a concurrent commit writes, then
    // the first commits.
    let contended = |concurrent: &dyn Fn()| -> Result<u64, CommitError> {
        let mut txn = h.begin();
        assert_eq!(run_query(&mut txn, &take10).len(), 10);
        txn.insert("side", obj(&[])).unwrap();
        concurrent();
        h.commit(txn)
    };
    // Writes past the tenth key (or before the range) do not conflict ...
    contended(&|| patch_tag(50_010)).expect("write to the 11th key does not conflict");
    contended(&|| insert_n(50_020)).expect("insert beyond the prefix does not conflict");
    contended(&|| insert_n(49_999)).expect("insert before the range does not conflict");
    contended(&|| patch_tag(99_999)).expect("write at the end does not conflict");
    // ... writes inside it do.
    assert!(matches!(contended(&|| patch_tag(50_009)), Err(CommitError::Conflict { .. })), "write to the 10th key");
    assert!(matches!(contended(&|| patch_tag(50_000)), Err(CommitError::Conflict { .. })), "write to the 1st key");
    assert!(matches!(contended(&|| insert_n(50_004)), Err(CommitError::Conflict { .. })), "insert inside the prefix");
    let mut txn = h.begin();
    let victim = ids[50_003];
    let delete = || {
        let mut w = h.begin();
        w.delete(victim).unwrap();
        h.commit(w).unwrap();
    };
    assert_eq!(run_query(&mut txn, &take10).len(), 10);
    txn.insert("side", obj(&[])).unwrap();
    delete();
    assert!(matches!(h.commit(txn), Err(CommitError::Conflict { .. })), "delete inside the prefix");
    eprintln!("total {:?}", started.elapsed());
}
