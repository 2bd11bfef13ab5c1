//! The subset of Spin manifest v2 (`spin.toml`) that this host understands,
//! plus resolution of application variables and `{{ var }}` templates.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub spin_manifest_version: u32,
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    pub trigger: Triggers,
    #[serde(default)]
    pub component: BTreeMap<String, ComponentDecl>,
}

#[derive(Debug, Default, Deserialize)]
pub struct VariableDecl {
    pub default: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub secret: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    /// Fired through `POST /.spin-host/cron/{component}`, and on their
    /// schedules with `--cron`.
    #[serde(default)]
    pub cron: Vec<CronTrigger>,
}

#[derive(Debug, Deserialize)]
pub struct HttpTrigger {
    pub route: String,
    pub component: String,
}

/// `[[trigger.cron]]` of the `trigger-cron` plugin.
#[derive(Debug, Deserialize)]
pub struct CronTrigger {
    pub component: String,
    /// With seconds: `sec min hour day month weekday [year]`, e.g. `"0 */5 * * * *"`.
    pub cron_expression: String,
}

/// `[component.X.build]` and other keys Spin knows are ignored by serde.
#[derive(Debug, Deserialize)]
pub struct ComponentDecl {
    pub source: String,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Static files the component sees in its WASI filesystem.
    #[serde(default)]
    pub files: Vec<FilesMount>,
}

/// An entry of a component's `files`: a glob of files relative to the application
/// directory, placed at the same relative path under `/`, or a directory placed at a
/// guest path. This host mounts directories only (see [`ComponentDecl::mounts`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum FilesMount {
    Pattern(String),
    Placement { source: String, destination: String },
}

/// A directory of the host preopened read-only in the guest, as Spin mounts a
/// `{ source = "dir", destination = "/path" }` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirMount {
    /// The host directory: `source` resolved against the application directory.
    pub host: PathBuf,
    /// Where the guest sees it: an absolute path.
    pub guest: String,
}

impl ComponentDecl {
    /// The component's `files`, resolved against `app_dir`. Like `spin up`, a source
    /// that is not a directory is an error naming it. Glob patterns are refused: Spin
    /// copies the files they match into the guest's `/`, which this host does not do.
    pub fn mounts(&self, app_dir: &Path) -> Result<Vec<DirMount>> {
        self.files
            .iter()
            .map(|mount| match mount {
                FilesMount::Pattern(pattern) => bail!(
                    "files pattern {pattern:?}: spin-host mounts only directories, \
                     `{{ source = \"dir\", destination = \"/path\" }}`"
                ),
                FilesMount::Placement {
                    source,
                    destination,
                } => {
                    if !destination.starts_with('/') {
                        bail!("files destination {destination:?} must be an absolute path");
                    }
                    let host = app_dir.join(source);
                    if !host.is_dir() {
                        bail!(
                            "files source {source:?}: {} is not a directory",
                            host.display()
                        );
                    }
                    Ok(DirMount {
                        host,
                        guest: destination.clone(),
                    })
                }
            })
            .collect()
    }
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self> {
        let manifest: Manifest = toml::from_str(text).context("parsing Spin manifest")?;
        if manifest.spin_manifest_version != 2 {
            bail!(
                "unsupported spin_manifest_version {} (only 2)",
                manifest.spin_manifest_version
            );
        }
        let triggers = manifest.trigger.http.iter().map(|t| &t.component);
        let crons = manifest.trigger.cron.iter().map(|t| &t.component);
        for id in triggers.chain(crons) {
            if !manifest.component.contains_key(id) {
                bail!("trigger refers to undefined component {id:?}");
            }
        }
        Ok(manifest)
    }

    /// Values of the application variables: `overrides` (from `--var`) win
    /// over `SPIN_VARIABLE_<NAME>` from `env`, which win over the default.
    pub fn resolve_variables(
        &self,
        overrides: &BTreeMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, String>> {
        if let Some(name) = overrides.keys().find(|n| !self.variables.contains_key(*n)) {
            bail!("variable {name:?} is not declared in the manifest");
        }
        let mut values = BTreeMap::new();
        for (name, decl) in &self.variables {
            let value = overrides
                .get(name)
                .cloned()
                .or_else(|| env(&format!("SPIN_VARIABLE_{}", name.to_uppercase())))
                .or_else(|| decl.default.clone());
            match value {
                Some(v) => values.insert(name.clone(), v),
                None if decl.required => bail!("required variable {name:?} has no value"),
                None => bail!("variable {name:?} has neither a default nor a value"),
            };
        }
        Ok(values)
    }
}

/// Expands `{{ name }}` references to application variables.
pub fn render_template(template: &str, vars: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .with_context(|| format!("unclosed `{{{{` in {template:?}"))?;
        let name = after[..end].trim();
        let value = vars.get(name).with_context(|| {
            format!("template {template:?} refers to unknown variable {name:?}")
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
