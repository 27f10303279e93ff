//! Compiled plugins cached on disk, keyed by the component's sha256 and the engine's
//! compatibility hash, so a plugin compiles once per machine and engine build, not once per start.
//!
//! A cached artifact is native code the process runs, so an artifact is loaded only if no one else
//! can have written it: it is opened once (`O_NOFOLLOW`: not through a symlink) and that handle
//! must be a regular file owned by the process's user and not writable by group or others; its
//! bytes are read from that same handle. One that fails the check is discarded with a warning
//! naming it and why, and the plugin is compiled again. Checking the file, not the directory,
//! keeps the cache safe in a directory others can write (a Kubernetes emptyDir is mode 0777)
//! without trusting it. Directories the cache creates are mode 0700, artifacts 0600.

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
        match read_trusted(&path) {
            Ok(Some(artifact)) => {
                // SAFETY: the bytes were written by `precompile_component` of an engine with the
                // same compatibility hash (it is in the name): the file they came from is one only
                // this process's user can have written (checked on the handle they were read
                // from). Deserialisation still checks the header and rejects a mismatched artifact.
                match unsafe { Component::deserialize(engine, &artifact) } {
                    Ok(component) => return Ok(component),
                    Err(e) => tracing::warn!(path = %path.display(), "discarding unusable cached artifact: {e:#}"),
                }
            }
            Ok(None) => {}
            Err(why) => tracing::warn!(path = %path.display(), "discarding cached artifact: {why}"),
        }
        let artifact = engine.precompile_component(bytes)?;
        if let Err(e) = write_atomically(&path, &artifact) {
            tracing::warn!(path = %path.display(), "could not cache compiled plugin: {e:#}");
        }
        // SAFETY: `artifact` was produced just above by this very engine.
        Ok(unsafe { Component::deserialize(engine, &artifact) }?)
    }
}

/// The bytes of the artifact at `path`, read through one handle that must be a regular file only
/// this process's user can write; `None` when there is none.
fn read_trusted(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file =
        match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err("it is a symlink".into()),
            Err(e) => return Err(e.to_string()),
        };
    let meta = file.metadata().map_err(|e| e.to_string())?;
    check_private(&meta)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(Some(bytes))
}

/// Refuses anything but a regular file owned by this process's user that group and others
/// cannot write.
fn check_private(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if !meta.file_type().is_file() {
        return Err("it is not a regular file".into());
    }
    if meta.uid() != uid {
        return Err(format!("it is owned by uid {}, not by this process's uid {uid}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("it is writable by group or others (mode {:o})", meta.mode() & 0o7777));
    }
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), path.file_name().unwrap().to_string_lossy()));
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    fn component() -> Vec<u8> {
        wat::parse_str("(component)").unwrap()
    }

    fn artifacts(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir).map_or(vec![], |d| d.map(|e| e.unwrap().path()).collect())
    }

    #[test]
    fn a_private_cache_is_used() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache");
        let (engine, bytes) = (engine(), component());
        let cache = ArtifactCache::new(&engine, Some(dir.clone()));
        cache.load(&engine, &bytes, &sha256_hex(&bytes)).unwrap();
        let written = artifacts(&dir);
        assert_eq!(written.len(), 1, "{written:?}");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&written[0]), 0o600);
    }

    #[test]
    fn an_artifact_others_can_write_is_discarded() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache");
        let (engine, bytes) = (engine(), component());
        let cache = ArtifactCache::new(&engine, Some(dir.clone()));
        let sha = sha256_hex(&bytes);
        cache.load(&engine, &bytes, &sha).unwrap();
        let artifact = artifacts(&dir).pop().unwrap();
        // Someone else could have swapped in native code: it must not be loaded.
        std::fs::write(&artifact, b"not an artifact").unwrap();
        std::fs::set_permissions(&artifact, std::fs::Permissions::from_mode(0o666)).unwrap();
        cache.load(&engine, &bytes, &sha).unwrap();
        let meta = std::fs::metadata(&artifact).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "rewritten by this process");
        assert!(meta.len() > 100, "compiled again, not the planted bytes");
    }

    #[test]
    fn a_symlinked_artifact_is_discarded() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache");
        let (engine, bytes) = (engine(), component());
        let cache = ArtifactCache::new(&engine, Some(dir.clone()));
        let sha = sha256_hex(&bytes);
        cache.load(&engine, &bytes, &sha).unwrap();
        let artifact = artifacts(&dir).pop().unwrap();
        let elsewhere = root.path().join("planted.cwasm");
        std::fs::rename(&artifact, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &artifact).unwrap();
        assert_eq!(read_trusted(&artifact).unwrap_err(), "it is a symlink");
        cache.load(&engine, &bytes, &sha).unwrap();
        assert!(!std::fs::symlink_metadata(&artifact).unwrap().file_type().is_symlink(), "replaced by a fresh artifact");
    }

    #[test]
    fn an_artifact_of_another_user_is_discarded() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: chown to another user needs root");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("emptydir");
        std::fs::create_dir(&dir).unwrap();
        // A directory every user may write, as a Kubernetes emptyDir is: the cache still works,
        // and a file another user planted in it is not run.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (engine, bytes) = (engine(), component());
        let cache = ArtifactCache::new(&engine, Some(dir.clone()));
        let sha = sha256_hex(&bytes);
        cache.load(&engine, &bytes, &sha).unwrap();
        let artifact = artifacts(&dir).pop().unwrap();
        assert!(read_trusted(&artifact).unwrap().is_some(), "its own artifact is trusted");
        std::os::unix::fs::chown(&artifact, Some(4242), Some(4242)).unwrap();
        let err = read_trusted(&artifact).unwrap_err();
        assert!(err.contains("owned by uid 4242"), "{err}");
        cache.load(&engine, &bytes, &sha).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&artifact).unwrap().uid(), 0, "replaced by this process's own artifact");
    }
}
