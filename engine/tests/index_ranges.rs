//! Property-style test of index range queries over a compound index `by_ab` on
//! `["a", "b"]`: random documents (fixed seed) whose fields take values of every
//! type, including ones that compare equal-ish across types (int64 1 vs float64 1.0,
//! -0.0 vs 0.0, NaN, strings with NUL bytes) and missing fields. Random `eq`,
//! `gt`/`gte`, `lt`/`lte` ranges in both orders, with filters and limits, are
//! checked against a brute-force filter+sort of an in-memory model — at the latest
//! snapshot, at an older snapshot (so scans pass over superseded index versions)
//! and inside a transaction with uncommitted writes.

mod common;

use common::*;
use convect_engine::txn::Transaction;
use convect_engine::types::Document;
use convect_schema::{compare_optional, DocumentId, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value as Json};
use std::cmp::Ordering;
use std::collections::BTreeMap;

type Model = BTreeMap<DocumentId, BTreeMap<String, Value>>;

fn domain() -> Vec<Option<Value>> {
    let obj1: BTreeMap<std::string::String, Value> = [("k".to_string(), Value::Int64(1))].into();
    use Value::*;
    vec![
        None,
        Some(Null),
        Some(Int64(i64::MIN)),
        Some(Int64(-1)),
        Some(Int64(0)),
        Some(Int64(1)),
        Some(Int64(i64::MAX)),
        Some(Float64(f64::NEG_INFINITY)),
        Some(Float64(-1.5)),
        Some(Float64(-0.0)),
        Some(Float64(0.0)),
        Some(Float64(1.0)),
        Some(Float64(f64::INFINITY)),
        Some(Float64(f64::NAN)),
        Some(Boolean(false)),
        Some(Boolean(true)),
        Some(String("".into())),
        Some(String("a".into())),
        Some(String("a\0".into())),
        Some(String("a\0b".into())),
        Some(String("ab".into())),
        Some(String("b".into())),
        Some(Bytes(vec![])),
        Some(Bytes(vec![0])),
        Some(Bytes(vec![1])),
        Some(Array(vec![])),
        Some(Array(vec![Int64(1)])),
        Some(Array(vec![Int64(1), Int64(2)])),
        Some(Object(BTreeMap::new())),
        Some(Object(obj1)),
    ]
}

/// The JSON of a possibly-missing value in a query.
fn opt_json(v: &Option<Value>) -> Json {
    match v {
        Some(v) => v.to_json(),
        None => json!({"$undefined": null}),
    }
}

#[derive(Debug, Clone)]
struct Bound {
    strict: bool,
    value: Option<Value>,
}

#[derive(Debug, Clone)]
struct Spec {
    eq: Vec<Option<Value>>,
    lower: Option<Bound>,
    upper: Option<Bound>,
    desc: bool,
    /// `filter(q => q.neq(q.field("b"), v))`, applied before the limit.
    filter_neq_b: Option<Option<Value>>,
    limit: Option<usize>,
}

const FIELDS: [&str; 2] = ["a", "b"];

impl Spec {
    fn random(rng: &mut StdRng, values: &[Option<Value>]) -> Spec {
        let pick = |rng: &mut StdRng| values[rng.random_range(0..values.len())].clone();
        let eq_count = [0, 1, 1, 1, 2][rng.random_range(0..5)];
        let eq: Vec<_> = (0..eq_count).map(|_| pick(rng)).collect();
        let bounded = eq.len() < 2;
        let lower = (bounded && rng.random_bool(0.5)).then(|| Bound { strict: rng.random_bool(0.5), value: pick(rng) });
        let upper = (bounded && rng.random_bool(0.5)).then(|| Bound { strict: rng.random_bool(0.5), value: pick(rng) });
        Spec {
            eq,
            lower,
            upper,
            desc: rng.random_bool(0.5),
            filter_neq_b: rng.random_bool(0.25).then(|| pick(rng)),
            limit: rng.random_bool(0.4).then(|| rng.random_range(1..25)),
        }
    }

    fn query(&self) -> Json {
        let mut range = Vec::new();
        for (field, v) in FIELDS.iter().zip(&self.eq) {
            range.push(json!({"type": "Eq", "fieldPath": field, "value": opt_json(v)}));
        }
        let bound_field = FIELDS[self.eq.len().min(1)];
        if let Some(b) = &self.lower {
            range.push(json!({"type": if b.strict { "Gt" } else { "Gte" }, "fieldPath": bound_field, "value": opt_json(&b.value)}));
        }
        if let Some(b) = &self.upper {
            range.push(json!({"type": if b.strict { "Lt" } else { "Lte" }, "fieldPath": bound_field, "value": opt_json(&b.value)}));
        }
        let mut ops = Vec::new();
        if let Some(v) = &self.filter_neq_b {
            ops.push(json!({"filter": {"$neq": [{"$field": "b"}, {"$literal": opt_json(v)}]}}));
        }
        if let Some(n) = self.limit {
            ops.push(json!({"limit": n}));
        }
        index_query("p.by_ab", json!(range), if self.desc { "desc" } else { "asc" }, json!(ops))
    }

    /// The brute-force answer: filter every document of `model`, sort, truncate.
    fn expected(&self, model: &Model) -> Vec<DocumentId> {
        let get = |doc: &BTreeMap<String, Value>, f: &str| doc.get(f).cloned();
        let bound_field = FIELDS[self.eq.len().min(1)];
        let mut docs: Vec<(&DocumentId, &BTreeMap<String, Value>)> = model
            .iter()
            .filter(|(_, doc)| {
                FIELDS.iter().zip(&self.eq).all(|(f, v)| compare_optional(get(doc, f).as_ref(), v.as_ref()) == Ordering::Equal)
            })
            .filter(|(_, doc)| {
                let x = get(doc, bound_field);
                let lower_ok = self.lower.as_ref().is_none_or(|b| {
                    let c = compare_optional(x.as_ref(), b.value.as_ref());
                    if b.strict { c == Ordering::Greater } else { c != Ordering::Less }
                });
                let upper_ok = self.upper.as_ref().is_none_or(|b| {
                    let c = compare_optional(x.as_ref(), b.value.as_ref());
                    if b.strict { c == Ordering::Less } else { c != Ordering::Greater }
                });
                lower_ok && upper_ok
            })
            .filter(|(_, doc)| {
                self.filter_neq_b.as_ref().is_none_or(|v| compare_optional(get(doc, "b").as_ref(), v.as_ref()) != Ordering::Equal)
            })
            .collect();
        let sort_key = |doc: &BTreeMap<String, Value>| -> Vec<Option<Value>> {
            ["a", "b", "_creationTime", "_id"].iter().map(|f| get(doc, f)).collect()
        };
        docs.sort_by_key(|x| sort_key(x.1));
        if self.desc {
            docs.reverse();
        }
        let mut ids: Vec<DocumentId> = docs.into_iter().map(|(id, _)| *id).collect();
        if let Some(n) = self.limit {
            ids.truncate(n);
        }
        ids
    }
}

fn check(txn: &mut Transaction, spec: &Spec, model: &Model, what: &str) {
    let got: Vec<Document> = run_query(txn, &spec.query());
    let got_ids: Vec<DocumentId> = got.iter().map(|d| d.id).collect();
    let expected = spec.expected(model);
    assert_eq!(got_ids, expected, "{what}: {spec:?}\nquery: {}", spec.query());
    for doc in &got {
        assert_eq!(&doc.value, &model[&doc.id], "{what}: returned document differs from the model");
    }
}

/// Applies random patches, deletes and inserts to `txn` and `model`.
fn mutate(rng: &mut StdRng, txn: &mut Transaction, model: &mut Model, values: &[Option<Value>], n: usize) {
    let pick = |rng: &mut StdRng| values[rng.random_range(0..values.len())].clone();
    for _ in 0..n {
        let ids: Vec<DocumentId> = model.keys().copied().collect();
        let id = ids[rng.random_range(0..ids.len())];
        match rng.random_range(0..4) {
            0 | 1 => {
                let field = FIELDS[rng.random_range(0..2)];
                let v = pick(rng);
                txn.patch(id, [(field.to_string(), v.clone())].into()).unwrap();
                let doc = model.get_mut(&id).unwrap();
                match v {
                    Some(v) => doc.insert(field.to_string(), v),
                    None => doc.remove(field),
                };
            }
            2 => {
                txn.delete(id).unwrap();
                model.remove(&id);
            }
            _ => {
                let mut doc = BTreeMap::new();
                for f in FIELDS {
                    if let Some(v) = pick(rng) {
                        doc.insert(f.to_string(), v);
                    }
                }
                let id = txn.insert("p", doc).unwrap();
                model.insert(id, txn.get(id).unwrap().unwrap().value);
            }
        }
    }
}

#[test]
fn index_ranges_match_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(&dir.path().join("db.sqlite3"));
    h.create_index("p", "by_ab", &["a", "b"]);
    let values = domain();
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut model = Model::new();

    // 360 documents in three commits.
    for _ in 0..3 {
        let mut txn = h.begin();
        let mut ids = Vec::new();
        for _ in 0..120 {
            let mut doc = BTreeMap::new();
            for f in FIELDS {
                if let Some(v) = values[rng.random_range(0..values.len())].clone() {
                    doc.insert(f.to_string(), v);
                }
            }
            ids.push(txn.insert("p", doc).unwrap());
        }
        h.commit(txn).unwrap();
        let mut reader = h.begin();
        for id in ids {
            model.insert(id, reader.get(id).unwrap().unwrap().value);
        }
    }
    // Old-snapshot readers, several so that no one transaction exceeds the read limit.
    let mut old: Vec<Transaction> = (0..6).map(|_| h.begin()).collect();
    let old_model = model.clone();

    // Three commits of random patches, deletes and inserts leave superseded versions.
    for _ in 0..3 {
        let mut txn = h.begin();
        mutate(&mut rng, &mut txn, &mut model, &values, 80);
        h.commit(txn).unwrap();
    }
    let mut reader = h.begin();
    for (id, doc) in &model {
        assert_eq!(&reader.get(*id).unwrap().unwrap().value, doc, "model matches storage");
    }
    drop(reader);

    let specs: Vec<Spec> = (0..300).map(|_| Spec::random(&mut rng, &values)).collect();
    let mut nonempty = 0;
    for (i, spec) in specs.iter().enumerate() {
        nonempty += !spec.expected(&model).is_empty() as usize;
        check(&mut h.begin(), spec, &model, "latest snapshot");
        let n = old.len();
        check(&mut old[i % n], spec, &old_model, "old snapshot");
    }
    // The random queries are not vacuous.
    assert!(nonempty > 100, "only {nonempty} of 300 queries have results");

    // Inside transactions with uncommitted writes (read-your-writes through scans);
    // several, each with its own writes, so that none exceeds the read limit.
    let mut pending: Vec<(Transaction, Model)> = (0..4)
        .map(|_| {
            let mut txn = h.begin();
            let mut m = model.clone();
            mutate(&mut rng, &mut txn, &mut m, &values, 60);
            (txn, m)
        })
        .collect();
    for (i, spec) in specs.iter().take(160).enumerate() {
        let (txn, m) = &mut pending[i % 4];
        check(txn, spec, m, "with pending writes");
    }
}
