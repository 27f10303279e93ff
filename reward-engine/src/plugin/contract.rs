//! What a component must be to load as a reward plugin: the contract it exports, the imports the
//! sandbox grants, and the metadata it declares, each checked with an error that names the file.

use std::path::PathBuf;

use wasmtime::component::Component;

use super::super::bindings::wit;
use super::super::host::HostInner;
use super::super::judge::JUDGE_INTERFACE;
use super::super::limits::{
    MAX_DECLARED_METRICS, MAX_METRIC_NAME_BYTES, MAX_PLUGIN_DESCRIPTION_BYTES, MAX_PLUGIN_NAME_BYTES, MAX_PLUGIN_VERSION_BYTES,
    bounded_guest_text,
};
use super::super::meter::METER_INTERFACE;
use super::super::programs::PROGRAMS_INTERFACE;

/// The plugin-contract versions this host speaks (`reward:plugin/reward@0.1.x`).
pub const CONTRACT_INTERFACE: &str = "reward:plugin/reward";
/// An import a plugin may have (`reward:plugin/fixtures@0.1.x`), served only with what its
/// reward grants.
pub const FIXTURES_INTERFACE: &str = "reward:plugin/fixtures";
/// The contract version this host was built against.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// Why a plugin could not be loaded. Each message names the plugin's file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("reading plugin {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a valid component for this engine.
    #[error("compiling plugin {origin}: {message}")]
    Compile {
        /// Where the bytes came from.
        origin: String,
        /// The compiler's complaint.
        message: String,
    },
    /// The component imports something the sandbox does not grant.
    #[error(
        "plugin {origin} imports `{import}`, which the sandbox does not grant: reward plugins may import nothing \
         but {FIXTURES_INTERFACE}@0.1.x, {METER_INTERFACE}@0.1.x, {PROGRAMS_INTERFACE}@0.1.x and {JUDGE_INTERFACE}@0.1.x (no files, clock, network or randomness; build Rust guests for \
         wasm32-unknown-unknown and Python ones with componentize-py --stub-wasi){more}"
    )]
    ForbiddenImport {
        /// Where the bytes came from.
        origin: String,
        /// The first forbidden import.
        import: String,
        /// How many more there are, as text.
        more: String,
    },
    /// The component does not export a contract version this host speaks.
    #[error("plugin {origin} does not export {CONTRACT_INTERFACE}@{CONTRACT_VERSION} (this host speaks 0.1.x); it exports: {exports}")]
    Contract {
        /// Where the bytes came from.
        origin: String,
        /// What it exports instead.
        exports: String,
    },
    /// Instantiating it or reading its metadata failed.
    #[error("starting plugin {origin}: {message}")]
    Start {
        /// Where the bytes came from.
        origin: String,
        /// What failed.
        message: String,
    },
}

/// What a plugin says about itself, validated by the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// Short lowercase name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// The metrics it may emit.
    pub metrics: Vec<String>,
}

/// Whether `name` is `interface@0.1.PATCH`.
pub(crate) fn speaks_0_1(name: &str, interface: &str) -> bool {
    name.strip_prefix(interface)
        .and_then(|rest| rest.strip_prefix("@0.1."))
        .is_some_and(|patch| !patch.is_empty() && patch.chars().all(|c| c.is_ascii_digit()))
}

/// Refuses a component that imports anything but `fixtures`, `meter`, `programs` and `judge`; returns whether it
/// imports `meter`.
pub(super) fn check_imports(host: &HostInner, component: &Component, origin: &str) -> Result<bool, LoadError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(&host.engine).map(|(name, _)| name.to_owned()).collect();
    let metered = imports.iter().any(|name| speaks_0_1(name, METER_INTERFACE));
    let granted = [FIXTURES_INTERFACE, METER_INTERFACE, PROGRAMS_INTERFACE, JUDGE_INTERFACE];
    let forbidden: Vec<&String> = imports.iter().filter(|name| !granted.iter().any(|i| speaks_0_1(name, i))).collect();
    match forbidden.split_first() {
        None => Ok(metered),
        Some((first, rest)) => Err(LoadError::ForbiddenImport {
            origin: origin.into(),
            import: (*first).clone(),
            more: if rest.is_empty() {
                String::new()
            } else {
                format!(" (and {} more: {})", rest.len(), rest.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
            },
        }),
    }
}

pub(super) fn check_contract(host: &HostInner, component: &Component, origin: &str) -> Result<(), LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(&host.engine).map(|(name, _)| name.to_owned()).collect();
    if exports.iter().any(|name| speaks_0_1(name, CONTRACT_INTERFACE)) {
        Ok(())
    } else {
        Err(LoadError::Contract { origin: origin.into(), exports: if exports.is_empty() { "nothing".into() } else { exports.join(", ") } })
    }
}

/// Checks what a plugin says about itself against the host's caps, naming the field.
pub(super) fn validate_info(info: wit::PluginInfo) -> Result<PluginInfo, String> {
    if info.name.is_empty() || info.name.len() > MAX_PLUGIN_NAME_BYTES {
        return Err(format!(
            "plugin name must be 1 to {MAX_PLUGIN_NAME_BYTES} bytes, got {:?}",
            bounded_guest_text(&info.name, MAX_PLUGIN_NAME_BYTES)
        ));
    }
    if info.version.is_empty() || info.version.len() > MAX_PLUGIN_VERSION_BYTES {
        return Err(format!(
            "plugin \"{}\" declares a version of {} bytes (1 to {MAX_PLUGIN_VERSION_BYTES} allowed)",
            info.name,
            info.version.len()
        ));
    }
    if info.description.len() > MAX_PLUGIN_DESCRIPTION_BYTES {
        return Err(format!(
            "plugin \"{}\" declares a description of {} bytes (at most {MAX_PLUGIN_DESCRIPTION_BYTES})",
            info.name,
            info.description.len()
        ));
    }
    if info.metrics.len() > MAX_DECLARED_METRICS {
        return Err(format!("plugin \"{}\" declares {} metrics (at most {MAX_DECLARED_METRICS})", info.name, info.metrics.len()));
    }
    if let Some(bad) = info.metrics.iter().find(|m| m.is_empty() || m.len() > MAX_METRIC_NAME_BYTES) {
        return Err(format!(
            "plugin \"{}\" declares a metric name of {} bytes (1 to {MAX_METRIC_NAME_BYTES} allowed)",
            info.name,
            bad.len()
        ));
    }
    Ok(PluginInfo { name: info.name, version: info.version, description: info.description, metrics: info.metrics })
}
