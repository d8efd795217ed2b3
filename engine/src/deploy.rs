//! Deploys: a module set pushed by `convect deploy` becomes the live deployment.
//! Modules are content-addressed, so unchanged ones are neither re-sent nor
//! stored twice. The switch is atomic: schema checks against existing documents,
//! table creation, index backfills and the new deployment record are applied by the
//! committer as one exclusive step, or not at all.

use crate::catalog::{Catalog, IndexMeta, BY_CREATION_TIME, BY_ID};
use crate::committer::{CommitError, ExclusiveCtx};
use crate::deployment::{Deployment, DeploymentRecord, ModuleEntry};
use crate::engine::Engine;
use crate::deployment::node_bundle;
use crate::env_vars::EnvVars;
use crate::runtime::{Isolate, ModuleAnalysis, ModuleSources};
use crate::storage::{CatalogWrite, CommitRecord, IndexWrite, KeyRange, Persistence, StorageError};
use crate::types::{Order, Timestamp};
use convect_bundler::{Environment, ModuleKind, NodeDependency};
use convect_schema::{DatabaseSchema, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, serde::Deserialize)]
pub struct DeployModule {
    pub path: String,
    pub hash: String,
    pub kind: ModuleKind,
    #[serde(default)]
    pub environment: Environment,
    pub source: Option<String>,
    /// Sent with `source`; stored by the module's hash to map stack frames.
    #[serde(rename = "sourceMap", default)]
    pub source_map: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
pub struct DeployRequest {
    pub modules: Vec<DeployModule>,
    /// Packages the `"use node"` modules import, for the Node.js runtime to
    /// install (older CLIs send none).
    #[serde(rename = "nodeDependencies", default)]
    pub node_dependencies: Vec<NodeDependency>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("the server does not have {} module(s); send their sources", .0.len())]
    MissingModules(Vec<String>),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Rejected(String),
}

#[derive(Debug, serde::Serialize)]
pub struct DeploySummary {
    pub functions: usize,
    pub modules_uploaded: usize,
    pub indexes_added: Vec<String>,
    pub indexes_removed: Vec<String>,
    /// Files and exports that were accepted but are not served.
    pub warnings: Vec<String>,
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, DeployError> {
    Err(DeployError::Invalid(msg.into()))
}

impl Engine {
    pub async fn deploy(&self, request: DeployRequest) -> Result<DeploySummary, DeployError> {
        let _guard = self.inner.deploy_lock.lock().await;
        let sources = self.gather_sources(&request.modules)?;
        let uploaded: Vec<CatalogWrite> = request
            .modules
            .iter()
            .filter_map(|m| {
                let source = m.source.clone()?;
                Some(CatalogWrite::PutModule { hash: m.hash.clone(), source, source_map: m.source_map.clone() })
            })
            .collect();
        let entries: Vec<ModuleEntry> =
            request.modules.iter().map(|m| ModuleEntry { path: m.path.clone(), hash: m.hash.clone(), kind: m.kind, environment: m.environment }).collect();
        // Module-level code may read process.env (e.g. to construct an API client).
        let env = self.function_env();
        let analysis = self.analyze_modules(&sources, env.clone(), &entries, &request.node_dependencies).await?;
        let record = DeploymentRecord { modules: entries, analysis, node_dependencies: request.node_dependencies };
        let mut deployment = Deployment::build(0, record.clone(), sources).map_err(|e| DeployError::Invalid(e.to_string()))?;
        let warnings = unserved(deployment.schema.as_deref());
        deployment.env = env;
        let schema = deployment.schema.clone();
        let functions = deployment.functions.len();
        let record_json = serde_json::to_string(&record).expect("deployment record serializes");
        let modules_uploaded = uploaded.len();
        let engine = self.clone();
        let changes = self
            .inner
            .committer
            .exclusive(Box::new(move |ctx| {
                // Installed before the deploy's timestamp is published, so nothing
                // that runs at that timestamp still sees the old code.
                ctx.on_new_deployment = Some(Box::new(move |version| {
                    deployment.version = version;
                    *engine.inner.deployment.write().expect("deployment lock poisoned") = Arc::new(deployment);
                }));
                apply(ctx, schema.as_deref(), uploaded, record_json)
            }))
            .await
            .map_err(|e| match e {
                CommitError::Rejected(m) => DeployError::Rejected(m),
                other => DeployError::Rejected(format!("deploy failed: {other}")),
            })?;
        let list = |k: &str| changes[k].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
        Ok(DeploySummary { functions, modules_uploaded, indexes_added: list("added"), indexes_removed: list("removed"), warnings })
    }

    /// Loads every entry module where it runs, QuickJS or Node.js (after
    /// installing the packages they import), and records what it exports.
    async fn analyze_modules(
        &self,
        sources: &ModuleSources,
        env: Arc<EnvVars>,
        entries: &[ModuleEntry],
        node_dependencies: &[NodeDependency],
    ) -> Result<BTreeMap<String, ModuleAnalysis>, DeployError> {
        let targets = |environment| -> Vec<String> {
            entries.iter().filter(|m| m.kind != ModuleKind::Dependency && m.environment == environment).map(|m| m.path.clone()).collect()
        };
        let mut analysis = analyze_in_isolate(sources.clone(), env.clone(), targets(Environment::Isolate)).await?;
        let node_modules = targets(Environment::Node);
        if !node_modules.is_empty() {
            let bundle = Arc::new(node_bundle(entries, sources, node_dependencies));
            let node = self.inner.node_pool.analyze(&bundle, node_modules, env).await.map_err(|e| DeployError::Invalid(e.to_string()))?;
            for (module, found) in &node {
                only_actions(module, found)?;
            }
            analysis.extend(node);
        }
        Ok(analysis)
    }

    fn gather_sources(&self, modules: &[DeployModule]) -> Result<ModuleSources, DeployError> {
        let store = self.store();
        let mut sources = HashMap::new();
        let mut missing = Vec::new();
        for m in modules {
            let source = match &m.source {
                Some(s) => {
                    if blake3::hash(s.as_bytes()).to_hex().as_str() != m.hash {
                        return invalid(format!("module {} does not match its hash {}", m.path, m.hash));
                    }
                    Some(s.clone())
                }
                None => stored_with_map(store.as_ref(), &m.hash).map_err(|e| DeployError::Rejected(e.to_string()))?,
            };
            match source {
                Some(s) => {
                    sources.insert(m.path.clone(), s);
                }
                None => missing.push(m.hash.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(DeployError::MissingModules(missing));
        }
        Ok(Arc::new(sources))
    }
}

/// A stored module's source, or `None` to have it uploaded again: also when it
/// has no source map, as modules deployed before Convect kept maps have none.
fn stored_with_map(store: &dyn Persistence, hash: &str) -> Result<Option<String>, StorageError> {
    match store.module_source_map(hash)? {
        Some(_) => store.module_source(hash),
        None => Ok(None),
    }
}

/// Loads `targets` in a fresh QuickJS isolate and records what they export.
async fn analyze_in_isolate(
    sources: ModuleSources,
    env: Arc<EnvVars>,
    targets: Vec<String>,
) -> Result<BTreeMap<String, ModuleAnalysis>, DeployError> {
    tokio::task::spawn_blocking(move || {
        let mut isolate = Isolate::new(sources, &env).map_err(|e| DeployError::Invalid(e.to_string()))?;
        let mut out = BTreeMap::new();
        for path in targets {
            let analysis = isolate
                .analyze(&path)
                .map_err(|e| DeployError::Invalid(format!("Failed to analyze {path}: {e}")))?;
            out.insert(path, analysis);
        }
        Ok(out)
    })
    .await
    .map_err(|e| DeployError::Invalid(format!("module analysis crashed: {e}")))?
}

/// Node.js runs actions only; Convex refuses the rest with this message.
fn only_actions(module: &str, analysis: &ModuleAnalysis) -> Result<(), DeployError> {
    match analysis.functions.iter().find(|f| f.kind != "action") {
        None => Ok(()),
        Some(f) => invalid(format!(
            "`{}` defined in `{module:?}` is a {} function. Only actions can be defined in Node.js. \
             See https://docs.convex.dev/functions/actions for more details.",
            f.name,
            capitalized(&f.kind),
        )),
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// What a deploy accepts but Convect does not serve yet, so that nobody
/// mistakes silence for support: the schema's text and vector search indexes.
fn unserved(schema: Option<&DatabaseSchema>) -> Vec<String> {
    let Some(schema) = schema else { return Vec::new() };
    let mut warnings = Vec::new();
    for (table, def) in &schema.tables {
        let search = def.search_indexes.iter().map(|i| (&i.name, "text search"));
        let vector = def.vector_indexes.iter().map(|i| (&i.name, "vector search"));
        for (index, kind) in search.chain(vector) {
            warnings.push(format!("schema: {table}.{index}: {kind} indexes are not supported by Convect yet; queries using it fail"));
        }
    }
    warnings
}

/// The exclusive part of a deploy, run by the committer.
fn apply(
    ctx: &mut ExclusiveCtx,
    schema: Option<&DatabaseSchema>,
    uploaded: Vec<CatalogWrite>,
    record_json: String,
) -> Result<serde_json::Value, CommitError> {
    let mut catalog = ctx.catalog.read().expect("catalog poisoned").clone();
    if let Some(schema) = schema {
        check_documents(ctx.store, &catalog, schema, ctx.latest)?;
    }
    let (added, removed, backfill) = plan_indexes(ctx, &mut catalog, schema)?;
    if !backfill.is_empty() {
        let ts = ctx.next_ts();
        ctx.commits.push(CommitRecord { ts, documents: Vec::new(), index_entries: backfill });
    }
    ctx.catalog_writes.extend(uploaded);
    ctx.catalog_writes.push(CatalogWrite::SetDeployment(record_json));
    ctx.bump_deployment = true;
    Ok(serde_json::json!({ "added": added, "removed": removed }))
}

/// Calls `f` on every live document of a table as of `ts`, in id order.
fn for_each_document(
    store: &dyn Persistence,
    by_id: &IndexMeta,
    ts: Timestamp,
    mut f: impl FnMut(crate::types::Document) -> Result<(), CommitError>,
) -> Result<(), CommitError> {
    let mut range = KeyRange::all();
    loop {
        let hits = store.scan_index(by_id.id, &range, Order::Asc, ts, 1000)?;
        for hit in &hits {
            if let Some(doc) = store.get_document(hit.doc_id, ts)? {
                f(doc)?;
            }
        }
        match hits.last() {
            Some(last) if hits.len() == 1000 => {
                let mut start = last.key.clone();
                start.push(0);
                range = KeyRange { start, end: None };
            }
            _ => return Ok(()),
        }
    }
}

fn check_documents(store: &dyn Persistence, catalog: &Catalog, schema: &DatabaseSchema, ts: Timestamp) -> Result<(), CommitError> {
    if !schema.schema_validation {
        return Ok(());
    }
    for table in catalog.user_table_names() {
        let number = catalog.table_number(table).expect("listed table");
        let Some(by_id) = catalog.index(number, BY_ID) else { continue };
        let def = schema.tables.get(table);
        for_each_document(store, by_id, ts, |doc| {
            let id = doc.id.encode();
            let Some(def) = def else {
                return Err(CommitError::Rejected(format!(
                    "Schema validation failed: table \"{table}\" has documents (e.g. \"{id}\") but is not in the schema. Add it to schema.ts or delete its documents."
                )));
            };
            let Some(validator) = &def.document_type else { return Ok(()) };
            let user: BTreeMap<String, Value> =
                doc.value.into_iter().filter(|(k, _)| k != "_id" && k != "_creationTime").collect();
            validator.check(&Value::Object(user), catalog).map_err(|e| {
                CommitError::Rejected(format!(
                    "Schema validation failed: document with ID \"{id}\" in table \"{table}\" does not match the schema: {e}"
                ))
            })
        })?;
    }
    Ok(())
}

type IndexPlan = (Vec<String>, Vec<String>, Vec<IndexWrite>);

/// Creates tables named by the schema and reconciles user indexes with it,
/// backfilling new indexes from the documents as of now.
fn plan_indexes(ctx: &mut ExclusiveCtx, catalog: &mut Catalog, schema: Option<&DatabaseSchema>) -> Result<IndexPlan, CommitError> {
    let (mut added, mut removed, mut backfill) = (Vec::new(), Vec::new(), Vec::new());
    let empty = BTreeMap::new();
    let tables = schema.map(|s| &s.tables).unwrap_or(&empty);
    for name in tables.keys() {
        if catalog.table_number(name).is_none() {
            let (t, indexes) = catalog.plan_table(name);
            catalog.add_table(&t);
            ctx.catalog_writes.push(CatalogWrite::CreateTable(t));
            for i in indexes {
                catalog.add_index(&i);
                ctx.catalog_writes.push(CatalogWrite::CreateIndex(i));
            }
        }
    }
    let table_names: Vec<String> = catalog.user_table_names().map(str::to_owned).collect();
    for table in table_names {
        let number = catalog.table_number(&table).expect("listed table");
        let wanted: Vec<(String, Vec<String>)> = tables
            .get(&table)
            .map(|d| d.indexes.iter().map(|i| (i.name.clone(), i.fields.clone())).collect())
            .unwrap_or_default();
        let existing: Vec<IndexMeta> =
            catalog.indexes(number).iter().filter(|i| i.name != BY_ID && i.name != BY_CREATION_TIME).cloned().collect();
        for old in &existing {
            let keep = wanted.iter().any(|(n, f)| *n == old.name && crate::catalog::index_key_fields(n, f) == old.fields);
            if !keep {
                catalog.remove_index(old.id);
                ctx.catalog_writes.push(CatalogWrite::DropIndex(old.id));
                removed.push(format!("{table}.{}", old.name));
            }
        }
        for (name, fields) in wanted {
            if catalog.index(number, &name).is_some() {
                continue;
            }
            let record = catalog.plan_index(number, &name, &fields, 0);
            catalog.add_index(&record);
            let meta = catalog.index(number, &name).cloned().expect("just added");
            ctx.catalog_writes.push(CatalogWrite::CreateIndex(record));
            if let Some(by_id) = catalog.index(number, BY_ID) {
                for_each_document(ctx.store, by_id, ctx.latest, |doc| {
                    backfill.push(IndexWrite { index_id: meta.id, key: meta.key_of(&doc), doc_id: Some(doc.id) });
                    Ok(())
                })?;
            }
            added.push(format!("{table}.{name}"));
        }
    }
    Ok((added, removed, backfill))
}
