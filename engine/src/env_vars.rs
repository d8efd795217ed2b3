//! Deployment environment variables: the rules their names and values follow
//! (Convex's), the built-in variables every function sees, and the `process.env`
//! functions get. `Engine::set_env` makes a change a new deployment version, so
//! live queries re-run and no transaction mixes old and new values.

use crate::committer::CommitError;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Built-in: the URL clients use for this deployment's API.
pub const CLOUD_URL: &str = "CONVEX_CLOUD_URL";
/// Built-in: the URL of this deployment's HTTP actions.
pub const SITE_URL: &str = "CONVEX_SITE_URL";

const MAX_VARS: usize = 100;
const MAX_NAME_LEN: usize = 40;
/// The longest value: what fits in an HTTP header.
const MAX_VALUE_BYTES: usize = 8 << 10;

pub type EnvVars = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(
        "The environment variable name {0} is invalid. Environment variable names must begin with a letter and may only include characters a-z, A-Z, 0-9, and underscores."
    )]
    InvalidName(String),
    #[error("The environment variable name {0} is too long. Environment variable names must be at most {MAX_NAME_LEN} characters.")]
    NameTooLong(String),
    #[error("The value of environment variable {name} is {len} bytes, which is too large (max size: {MAX_VALUE_BYTES} bytes).")]
    ValueTooLarge { name: String, len: usize },
    #[error("Environment variable with name \"{0}\" is built-in and cannot be overridden")]
    BuiltIn(String),
    #[error("The environment variable limit ({MAX_VARS}) has been met.")]
    TooMany,
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// Where clients reach this deployment, as functions see it in the built-ins.
#[derive(Debug, Clone)]
pub struct PublicUrls {
    pub cloud: String,
    pub site: String,
}

impl PublicUrls {
    /// `process.env` for functions: the deployment's variables plus the built-ins.
    pub fn function_env(&self, vars: &EnvVars) -> Arc<EnvVars> {
        let mut env = vars.clone();
        env.insert(CLOUD_URL.into(), self.cloud.clone());
        env.insert(SITE_URL.into(), self.site.clone());
        Arc::new(env)
    }
}

/// `vars` with `changes` applied (`None` removes), if every change is allowed.
pub fn apply_changes(vars: &EnvVars, changes: &[(String, Option<String>)]) -> Result<EnvVars, EnvError> {
    let mut out = vars.clone();
    for (name, value) in changes {
        check_change(name, value.as_deref())?;
        match value {
            Some(v) => out.insert(name.clone(), v.clone()),
            None => out.remove(name),
        };
    }
    if out.len() > MAX_VARS {
        return Err(EnvError::TooMany);
    }
    Ok(out)
}

fn check_change(name: &str, value: Option<&str>) -> Result<(), EnvError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(EnvError::InvalidName(name.to_owned()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(EnvError::NameTooLong(name.to_owned()));
    }
    if name == CLOUD_URL || name == SITE_URL {
        return Err(EnvError::BuiltIn(name.to_owned()));
    }
    match value {
        Some(v) if v.len() > MAX_VALUE_BYTES => Err(EnvError::ValueTooLarge { name: name.to_owned(), len: v.len() }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str) -> Result<EnvVars, EnvError> {
        apply_changes(&EnvVars::new(), &[(name.to_owned(), Some("v".into()))])
    }

    #[test]
    fn names_follow_convex_rules() {
        assert!(set("OPENAI_API_KEY").is_ok());
        assert!(set("_private").is_ok());
        assert!(matches!(set("1_BAD"), Err(EnvError::InvalidName(_))));
        assert!(matches!(set("BAD-NAME"), Err(EnvError::InvalidName(_))));
        assert!(matches!(set(""), Err(EnvError::InvalidName(_))));
        assert!(matches!(set(&"A".repeat(41)), Err(EnvError::NameTooLong(_))));
    }

    #[test]
    fn built_ins_cannot_be_set_or_removed() {
        assert!(matches!(set(CLOUD_URL), Err(EnvError::BuiltIn(_))));
        let remove = apply_changes(&EnvVars::new(), &[(SITE_URL.to_owned(), None)]);
        assert!(matches!(remove, Err(EnvError::BuiltIn(_))));
        assert!(set("CONVEX_OTHER").is_ok());
    }

    #[test]
    fn built_ins_win_over_stored_values() {
        let urls = PublicUrls { cloud: "https://api.example".into(), site: "https://site.example".into() };
        let stored: EnvVars = [(CLOUD_URL.to_owned(), "stale".to_owned()), ("A".to_owned(), "1".to_owned())].into();
        let env = urls.function_env(&stored);
        assert_eq!(env[CLOUD_URL], "https://api.example");
        assert_eq!(env[SITE_URL], "https://site.example");
        assert_eq!(env["A"], "1");
    }

    #[test]
    fn limits() {
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        let r = apply_changes(&EnvVars::new(), &[("BIG".to_owned(), Some(big))]);
        assert!(matches!(r, Err(EnvError::ValueTooLarge { .. })));
        let full: EnvVars = (0..MAX_VARS).map(|i| (format!("V{i}"), String::new())).collect();
        assert!(matches!(apply_changes(&full, &[("ONE_MORE".into(), Some(String::new()))]), Err(EnvError::TooMany)));
        assert!(apply_changes(&full, &[("V0".into(), None)]).is_ok());
    }
}
