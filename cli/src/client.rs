//! Commands that talk to a running server: deploy, run, env, and the admin
//! reads behind `scheduled` and `crons`.

use crate::Target;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;

const DEFAULT_URL: &str = "http://127.0.0.1:3210";

/// Flags and environment first, then what `convect dev` left in `.convect/`.
fn resolve(target: &Target) -> Result<(String, String)> {
    let local = crate::project::find_local_config();
    let url = target.url.clone().or_else(|| local.as_ref().map(|c| c.url.clone())).unwrap_or_else(|| DEFAULT_URL.into());
    let key = target.admin_key.clone().or_else(|| local.map(|c| c.admin_key)).ok_or_else(|| {
        anyhow!("an admin key is needed: pass --admin-key, set CONVECT_ADMIN_KEY, or run `convect dev` in this project")
    })?;
    Ok((url, key))
}

/// An admin `GET` of `route`, as JSON.
pub async fn get(target: &Target, route: &str) -> Result<Value> {
    let (base, key) = resolve(target)?;
    let url = format!("{}{route}", base.trim_end_matches('/'));
    let res = reqwest::Client::new()
        .get(&url)
        .header("Authorization", format!("Convex {key}"))
        .send()
        .await
        .with_context(|| format!("could not reach {url}"))?;
    if !res.status().is_success() {
        bail!("{}", res.text().await?);
    }
    Ok(res.json().await?)
}

pub async fn post(target: &Target, route: &str, body: &Value) -> Result<reqwest::Response> {
    let (base, key) = resolve(target)?;
    let url = format!("{}{route}", base.trim_end_matches('/'));
    reqwest::Client::new()
        .post(&url)
        .header("Authorization", format!("Convex {key}"))
        .json(body)
        .send()
        .await
        .with_context(|| format!("could not reach {url}"))
}

pub async fn deploy(dir: &Path, target: &Target) -> Result<()> {
    let set = convect_bundler::bundle(dir)?;
    for config in ["convex.config.ts", "convex.config.js"].map(|f| dir.join(f)).iter().filter(|p| p.is_file()) {
        eprintln!("warning: {}: components are not supported by Convect yet; the components it uses are not deployed", config.display());
    }
    let manifest = |with: &dyn Fn(&str) -> bool| {
        let modules: Vec<Value> = set
            .modules
            .iter()
            .map(|m| {
                let mut v = json!({ "path": m.path, "hash": m.hash, "kind": m.kind, "environment": m.environment });
                if with(&m.hash) {
                    v["source"] = json!(m.source);
                    // Travels with its source: the server keeps both, by the module's hash.
                    if let Some(map) = &m.source_map {
                        v["sourceMap"] = json!(map);
                    }
                }
                v
            })
            .collect();
        json!({ "modules": modules, "nodeDependencies": set.node_dependencies })
    };
    if !set.node_dependencies.is_empty() {
        let names: Vec<String> = set.node_dependencies.iter().map(|d| format!("{}@{}", d.name, d.version)).collect();
        eprintln!("External packages for Node.js, installed by the server: {}", names.join(", "));
    }
    let mut res = post(target, "/api/deploy", &manifest(&|_| false)).await?;
    if res.status() == reqwest::StatusCode::CONFLICT {
        let missing: Value = res.json().await?;
        let missing: Vec<String> = serde_json::from_value(missing["missing"].clone())?;
        eprintln!("Uploading {} of {} modules", missing.len(), set.modules.len());
        res = post(target, "/api/deploy", &manifest(&|h| missing.iter().any(|m| m == h))).await?;
    }
    let status = res.status();
    let text = res.text().await?;
    if !status.is_success() {
        bail!("deploy failed ({status}): {text}");
    }
    let summary: Value = serde_json::from_str(&text)?;
    println!("Deployed {} functions from {}", summary["functions"], dir.display());
    for (key, label) in [("indexes_added", "added index"), ("indexes_removed", "removed index")] {
        for name in summary[key].as_array().into_iter().flatten() {
            println!("  {label} {}", name.as_str().unwrap_or_default());
        }
    }
    for warning in summary["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", warning.as_str().unwrap_or_default());
    }
    Ok(())
}

pub async fn run(function: &str, args: &str, target: &Target) -> Result<()> {
    let args: Value = serde_json::from_str(args).context("ARGS must be a JSON object")?;
    let res = post(target, "/api/function", &json!({ "path": function, "args": args, "format": "convex_encoded_json" })).await?;
    let status = res.status();
    let text = res.text().await?;
    let body: Value = serde_json::from_str(&text).map_err(|_| anyhow!("{text}"))?;
    for line in body["logLines"].as_array().into_iter().flatten() {
        eprintln!("{}", line.as_str().unwrap_or_default());
    }
    match body["status"].as_str() {
        Some("success") => {
            println!("{}", serde_json::to_string_pretty(&body["value"])?);
            Ok(())
        }
        // A function's failure comes with 200, as from Convex; other statuses are the request's fault.
        _ => match body["errorMessage"].as_str() {
            Some(message) => bail!("{message}"),
            None => bail!("{text} ({status})"),
        },
    }
}

pub async fn set_env(target: &Target, name: &str, value: Option<&str>) -> Result<()> {
    let res = post(target, "/api/update_environment_variables", &json!({ "changes": [{ "name": name, "value": value }] })).await?;
    if !res.status().is_success() {
        bail!("{}", res.text().await?);
    }
    println!("{} {name}", if value.is_some() { "Set" } else { "Removed" });
    Ok(())
}
