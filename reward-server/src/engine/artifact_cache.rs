//! Compiled plugins cached on disk, keyed by the component's sha256 and the engine's
//! compatibility hash, so a plugin compiles once per machine and engine build, not once per start.

use std::hash::Hasher;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Environment variable naming the cache directory.
pub const ENV_CACHE_DIR: &str = "REWARD_SERVER_CACHE_DIR";

/// The default cache directory: `$REWARD_SERVER_CACHE_DIR`, else `$XDG_CACHE_HOME/reward-server`,
/// else `~/.cache/reward-server`, else a folder in the system's temporary directory.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(ENV_CACHE_DIR) {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Path::new(&dir).join("reward-server");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return Path::new(&home).join(".cache").join("reward-server");
    }
    std::env::temp_dir().join("reward-server-cache")
}

/// Hex sha256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The on-disk cache of precompiled components.
#[derive(Clone, Debug)]
pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

/// Feeds `Hash` output into sha256, so the engine's compatibility hash is stable across processes.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is read")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl ArtifactCache {
    /// A cache in `dir`; `None` disables caching (every load compiles).
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_key = hex::encode(&hasher.0.finalize()[..8]);
        ArtifactCache { dir, engine_key }
    }

    /// Where the artifact for a component with this sha256 lives.
    fn path_for(&self, sha256: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// Loads a component: from the cache when a valid artifact is there, otherwise compiles it
    /// and stores the artifact (best effort: an unwritable cache only costs the next start time).
    pub fn load(&self, engine: &Engine, bytes: &[u8], sha256: &str) -> Result<Component> {
        let Some(path) = self.path_for(sha256) else {
            return Ok(Component::new(engine, bytes)?);
        };
        if path.exists() {
            // SAFETY: the file was written by `precompile_component` of an engine with the same
            // compatibility hash (it is in the name), into a directory this process owns.
            // Deserialisation still checks the header and rejects a mismatched artifact.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(e) => tracing::warn!(path = %path.display(), "discarding unusable cached artifact: {e:#}"),
            }
        }
        let artifact = engine.precompile_component(bytes)?;
        if let Err(e) = write_atomically(&path, &artifact) {
            tracing::warn!(path = %path.display(), "could not cache compiled plugin: {e:#}");
        }
        // SAFETY: `artifact` was produced just above by this very engine.
        Ok(unsafe { Component::deserialize(engine, &artifact) }?)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), path.file_name().unwrap().to_string_lossy()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}
