//! The deployment: which modules are live, what functions they export (with their
//! validators), and the schema. Built from an analysed module set; persisted as
//! JSON so that a restart serves the same functions without re-analysis.

use crate::runtime::{ModuleAnalysis, ModuleSources, NodeBundle, UdfKind};
use crate::auth::{parse_providers, Verifier};
use crate::scheduler::cron::{parse_crons, CronSpec};
use crate::udf::SourceMaps;
use convect_bundler::{Environment, ModuleKind, NodeDependency};
use convect_schema::{args_validator_from_json, DatabaseSchema, Validator};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("{module}: {message}")]
    Module { module: String, message: String },
    #[error("invalid schema: {0}")]
    Schema(String),
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ModuleEntry {
    pub path: String,
    pub hash: String,
    pub kind: ModuleKind,
    /// Records written before Node.js actions existed have no environment.
    #[serde(default)]
    pub environment: Environment,
}

/// What is persisted for a deployment.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DeploymentRecord {
    pub modules: Vec<ModuleEntry>,
    pub analysis: BTreeMap<String, ModuleAnalysis>,
    /// Packages the `"use node"` modules import (`convex.json`'s
    /// `node.externalPackages`); records from before them have none.
    #[serde(default)]
    pub node_dependencies: Vec<NodeDependency>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Internal,
}

#[derive(Debug, Clone)]
pub struct FunctionMeta {
    pub module: String,
    pub export: String,
    pub kind: UdfKind,
    pub environment: Environment,
    pub visibility: Visibility,
    pub args: Option<Validator>,
    pub returns: Option<Validator>,
}

#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// Matches the committer's deployment version while this deployment is live.
    pub version: u64,
    pub record: DeploymentRecord,
    pub sources: ModuleSources,
    pub functions: HashMap<String, FunctionMeta>,
    pub schema: Option<Arc<DatabaseSchema>>,
    pub node: Arc<NodeBundle>,
    /// Maps stack frames of failures to the modules' sources.
    pub source_maps: Arc<SourceMaps>,
    /// `process.env` of its functions (set by `Engine`): part of the deployment,
    /// so that changing it is a new deployment version, like a deploy.
    pub env: Arc<BTreeMap<String, String>>,
    /// `crons.ts`'s jobs, each naming a mutation or action of this deployment.
    pub crons: Arc<Vec<CronSpec>>,
    /// Verifies users' tokens against `auth.config.ts`'s providers.
    pub auth: Arc<Verifier>,
}

/// The verifier for `auth.config.ts`'s providers, which must be valid.
fn auth_providers(module: &str, json: &str) -> Result<Verifier, DeploymentError> {
    let invalid = |message: String| DeploymentError::Module { module: module.to_owned(), message };
    let config: serde_json::Value = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
    let providers = parse_providers(&config).map_err(|e| invalid(e.to_string()))?;
    Ok(Verifier::new(providers, reqwest::Client::new()))
}

/// Every cron job must name a mutation or an action of the deployment.
fn check_crons(crons: &[CronSpec], functions: &HashMap<String, FunctionMeta>) -> Result<(), DeploymentError> {
    for cron in crons {
        match functions.get(&normalize_path(&cron.name)) {
            Some(f) if f.kind != UdfKind::Query => {}
            found => {
                let problem = if found.is_some() { "is a query; crons run mutations and actions" } else { "does not exist" };
                let message = format!("cron job \"{}\": function {} {problem}", cron.identifier, cron.name);
                return Err(DeploymentError::Module { module: "crons.js".into(), message });
            }
        }
    }
    Ok(())
}

/// `dir/file.js` + `name` -> the function path clients use, `dir/file:name`.
pub fn function_path(module: &str, export: &str) -> String {
    let stem = module.strip_suffix(".js").unwrap_or(module);
    format!("{stem}:{export}")
}

/// Accepts `dir/file:name`, `dir/file.js:name`, and `dir/file` (meaning `default`).
pub fn normalize_path(path: &str) -> String {
    let (module, export) = path.split_once(':').unwrap_or((path, "default"));
    let module = module.trim_start_matches('/');
    let module = [".js", ".ts", ".jsx", ".tsx", ".mjs"].iter().find_map(|e| module.strip_suffix(e)).unwrap_or(module);
    format!("{module}:{export}")
}

impl Deployment {
    pub fn build(version: u64, record: DeploymentRecord, sources: ModuleSources) -> Result<Deployment, DeploymentError> {
        let mut functions = HashMap::new();
        let mut schema = None;
        let mut crons = Vec::new();
        let mut auth = None;
        let kinds: HashMap<&str, ModuleKind> = record.modules.iter().map(|m| (m.path.as_str(), m.kind)).collect();
        let environments: HashMap<&str, Environment> = record.modules.iter().map(|m| (m.path.as_str(), m.environment)).collect();
        for (module, analysis) in &record.analysis {
            let environment = environments.get(module.as_str()).copied().unwrap_or_default();
            for f in &analysis.functions {
                let kind = match f.kind.as_str() {
                    "query" => UdfKind::Query,
                    "mutation" => UdfKind::Mutation,
                    "action" => UdfKind::Action,
                    _ => continue, // HTTP actions are served by the router, not by path
                };
                let parse = |json: &Option<String>, what: &str| -> Result<Option<Validator>, DeploymentError> {
                    let Some(json) = json else { return Ok(None) };
                    args_validator_from_json(json).map_err(|e| DeploymentError::Module {
                        module: module.clone(),
                        message: format!("invalid {what} validator of `{}`: {e}", f.name),
                    })
                };
                let meta = FunctionMeta {
                    module: module.clone(),
                    export: f.name.clone(),
                    kind,
                    environment,
                    visibility: if f.visibility == "internal" { Visibility::Internal } else { Visibility::Public },
                    args: parse(&f.args, "args")?,
                    returns: parse(&f.returns, "returns")?,
                };
                functions.insert(function_path(module, &f.name), meta);
            }
            if let Some(json) = analysis.auth_config.as_ref().filter(|_| kinds.get(module.as_str()) == Some(&ModuleKind::AuthConfig)) {
                auth = Some(auth_providers(module, json)?);
            }
            if let Some(json) = &analysis.crons {
                crons = parse_crons(json).map_err(|e| DeploymentError::Module { module: module.clone(), message: e.to_string() })?;
            }
            if let Some(json) = &analysis.schema {
                let parsed = DatabaseSchema::from_export_json(json).map_err(|e| DeploymentError::Schema(e.to_string()))?;
                schema = Some(Arc::new(parsed));
            }
        }
        check_crons(&crons, &functions)?;
        let node = Arc::new(node_bundle(&record.modules, &sources, &record.node_dependencies));
        let source_maps = Arc::new(SourceMaps::new(&record.modules));
        let crons = Arc::new(crons);
        let auth = Arc::new(auth.unwrap_or_default());
        Ok(Deployment { version, record, sources, functions, schema, node, source_maps, env: Arc::default(), crons, auth })
    }

    pub fn function(&self, path: &str) -> Option<&FunctionMeta> {
        self.functions.get(&normalize_path(path))
    }
}

/// The `"use node"` modules among `modules`, with the packages they import,
/// for the Node.js runtime.
pub(crate) fn node_bundle(modules: &[ModuleEntry], sources: &ModuleSources, dependencies: &[NodeDependency]) -> NodeBundle {
    let mut key = blake3::Hasher::new();
    // The bundle's folder links to its packages, so other versions are another bundle.
    for d in dependencies {
        key.update(format!("{}@{}\n", d.name, d.version).as_bytes());
    }
    let mut node_sources = BTreeMap::new();
    for m in modules.iter().filter(|m| m.environment == Environment::Node) {
        key.update(m.path.as_bytes());
        key.update(b"\0");
        key.update(m.hash.as_bytes());
        key.update(b"\n");
        if let Some(source) = sources.get(&m.path) {
            node_sources.insert(m.path.clone(), source.clone());
        }
    }
    NodeBundle { key: key.finalize().to_hex().to_string(), sources: node_sources, dependencies: dependencies.to_vec() }
}
