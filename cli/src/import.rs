//! `convect import`: reads JSON (an array or one object), JSON Lines or CSV,
//! remembers where each record came from, and sends batches to the server. Every
//! batch is first checked in a dry run, so a bad record anywhere imports nothing
//! and is reported by file and line.

use crate::Target;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

const BATCH_RECORDS: usize = 500;
const BATCH_BYTES: usize = 4 << 20;

/// One record and where it came from.
pub struct Record {
    pub file: PathBuf,
    pub line: usize,
    pub value: Value,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].bytes().filter(|b| *b == b'\n').count() + 1
}

fn read_json(path: &Path, text: &str) -> Result<Vec<Record>> {
    let located = |e: serde_json::Error| anyhow!("{}:{}: invalid JSON: {e}", path.display(), e.line());
    // Borrowed raw values point into `text`, which gives each record's offset.
    let raw: &serde_json::value::RawValue = serde_json::from_str(text).map_err(located)?;
    let items: Vec<&serde_json::value::RawValue> = match raw.get().starts_with('[') {
        true => serde_json::from_str(raw.get()).map_err(located)?,
        false => vec![raw],
    };
    items
        .into_iter()
        .map(|item| {
            let offset = item.get().as_ptr() as usize - text.as_ptr() as usize;
            let value = serde_json::from_str(item.get()).map_err(located)?;
            Ok(Record { file: path.to_owned(), line: line_of(text, offset), value })
        })
        .collect()
}

fn read_jsonl(path: &Path, text: &str) -> Result<Vec<Record>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let value = serde_json::from_str(l).map_err(|e| anyhow!("{}:{}: invalid JSON: {e}", path.display(), i + 1))?;
            Ok(Record { file: path.to_owned(), line: i + 1, value })
        })
        .collect()
}

/// CSV cells become numbers or booleans when they read as such, strings otherwise;
/// empty cells are left out of the document.
fn csv_cell(cell: &str) -> Option<Value> {
    if cell.is_empty() {
        return None;
    }
    if let Ok(n) = cell.parse::<f64>() {
        if n.is_finite() {
            return Some(json!(n));
        }
    }
    Some(match cell {
        "true" => json!(true),
        "false" => json!(false),
        _ => json!(cell),
    })
}

fn read_csv(path: &Path, text: &str) -> Result<Vec<Record>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().with_context(|| format!("{}:1: invalid CSV header", path.display()))?.clone();
    reader
        .records()
        .map(|row| {
            let row = row.map_err(|e| anyhow!("{}:{}: invalid CSV: {e}", path.display(), e.position().map_or(0, |p| p.line())))?;
            let line = row.position().map_or(0, |p| p.line() as usize);
            let doc: Map<String, Value> =
                headers.iter().zip(row.iter()).filter_map(|(h, c)| csv_cell(c).map(|v| (h.to_owned(), v))).collect();
            Ok(Record { file: path.to_owned(), line, value: Value::Object(doc) })
        })
        .collect()
}

pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    let records = match ext.as_str() {
        "json" => read_json(path, &text)?,
        "jsonl" | "ndjson" => read_jsonl(path, &text)?,
        "csv" => read_csv(path, &text)?,
        _ => bail!("{}: unknown format; use .json, .jsonl or .csv", path.display()),
    };
    for r in &records {
        if !r.value.is_object() {
            bail!("{}:{}: a record must be a JSON object", r.file.display(), r.line);
        }
    }
    Ok(records)
}

fn batches(records: &[Record]) -> Vec<&[Record]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        let size = r.value.to_string().len();
        if i > start && (i - start >= BATCH_RECORDS || bytes + size > BATCH_BYTES) {
            out.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(&records[start..]);
    }
    out
}

#[derive(Default)]
struct Totals {
    inserted: u64,
    updated: u64,
    unchanged: u64,
}

async fn send(target: &Target, table: &str, upsert_by: Option<&str>, batch: &[Record], dry_run: bool) -> Result<Value> {
    let docs: Vec<&Value> = batch.iter().map(|r| &r.value).collect();
    let body = json!({ "table": table, "documents": docs, "upsertBy": upsert_by, "dryRun": dry_run });
    let res = crate::client::post(target, "/api/import", &body).await?;
    let status = res.status();
    let text = res.text().await?;
    if status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        let err: Value = serde_json::from_str(&text)?;
        let r = err["index"].as_u64().and_then(|i| batch.get(i as usize)).ok_or_else(|| anyhow!("{text}"))?;
        bail!("{}:{}: {}\nNothing was imported.", r.file.display(), r.line, err["message"].as_str().unwrap_or_default());
    }
    if !status.is_success() {
        bail!("import failed ({status}): {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    if len < 2 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} batches").expect("valid template").progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

pub async fn import(target: &Target, table: &str, files: &[PathBuf], upsert_by: Option<&str>) -> Result<()> {
    let mut records = Vec::new();
    for f in files {
        records.extend(read_records(f)?);
    }
    let batches = batches(&records);
    let bar = progress(batches.len(), "checking");
    for batch in &batches {
        send(target, table, upsert_by, batch, true).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let bar = progress(batches.len(), "importing");
    let mut totals = Totals::default();
    for batch in &batches {
        let s = send(target, table, upsert_by, batch, false).await?;
        totals.inserted += s["inserted"].as_u64().unwrap_or(0);
        totals.updated += s["updated"].as_u64().unwrap_or(0);
        totals.unchanged += s["unchanged"].as_u64().unwrap_or(0);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if totals.inserted + totals.updated == 0 {
        println!("Nothing changed: all {} records in \"{table}\" are already up to date.", records.len());
    } else {
        println!(
            "Imported {} records into \"{table}\": {} inserted, {} updated, {} unchanged.",
            records.len(),
            totals.inserted,
            totals.updated,
            totals.unchanged
        );
    }
    Ok(())
}
