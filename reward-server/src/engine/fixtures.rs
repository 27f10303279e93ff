//! Fixture files a reward grants its plugin (`fixtures = "DIR"` in the rewards config): the one
//! thing a plugin may read from outside the sandbox. The plugin names a file; the host hands over
//! its bytes if it is a regular file directly inside the declared directory, and nothing else
//! (no paths, no `..`, no symlinks, no directory listing). Bytes are read once and kept, so every
//! call sees the same data and a plugin cannot observe the file changing under it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Largest fixture file handed to a plugin: 512 MiB. The plugin's memory cap still applies to
/// the copy it receives.
pub const MAX_FIXTURE_BYTES: u64 = 512 << 20;

/// A directory of fixture files granted to a reward, with the bytes read so far.
#[derive(Debug)]
pub struct Fixtures {
    dir: PathBuf,
    read: Mutex<HashMap<String, Arc<[u8]>>>,
}

impl Fixtures {
    /// Grants the regular files directly inside `dir`. Fails if `dir` is not a directory.
    pub fn new(dir: &Path) -> Result<Fixtures, String> {
        let dir = dir.canonicalize().map_err(|e| format!("fixtures directory {}: {e}", dir.display()))?;
        if !dir.is_dir() {
            return Err(format!("fixtures directory {} is not a directory", dir.display()));
        }
        Ok(Fixtures { dir, read: Mutex::new(HashMap::new()) })
    }

    /// The granted directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bytes of fixture `name`, read on first use and kept. The error names the problem.
    pub fn read(&self, name: &str) -> Result<Arc<[u8]>, String> {
        check_name(name)?;
        if let Some(bytes) = self.read.lock().expect("fixture map poisoned").get(name) {
            return Ok(bytes.clone());
        }
        let path = self.dir.join(name);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("no fixture `{name}` in the reward's fixtures directory"),
            _ => format!("fixture `{name}`: {e}"),
        })?;
        if !meta.file_type().is_file() {
            return Err(format!("fixture `{name}` is not a regular file (symlinks and directories are not granted)"));
        }
        if meta.len() > MAX_FIXTURE_BYTES {
            return Err(format!("fixture `{name}` is {} bytes, over the host's cap of {MAX_FIXTURE_BYTES}", meta.len()));
        }
        let bytes: Arc<[u8]> = std::fs::read(&path).map_err(|e| format!("fixture `{name}`: {e}"))?.into();
        self.read.lock().expect("fixture map poisoned").insert(name.to_owned(), bytes.clone());
        Ok(bytes)
    }
}

/// A fixture name is a plain file name: not empty, not `.` or `..`, no separators, no NUL.
fn check_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 255
        && !name.contains(['/', '\\', '\0']);
    if plain {
        Ok(())
    } else {
        Err(format!("fixture name {name:?} is not a plain file name (no paths, `..` or separators)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_files_and_refuses_everything_else() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("fx");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("a.sqlite"), b"db bytes").unwrap();
        std::fs::write(root.path().join("secret.txt"), b"outside").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.path().join("secret.txt"), dir.join("link")).unwrap();
        let fx = Fixtures::new(&dir).unwrap();

        assert_eq!(&*fx.read("a.sqlite").unwrap(), b"db bytes");
        for bad in ["", ".", "..", "../secret.txt", "sub/x", "a\\b", "nul\0"] {
            let err = fx.read(bad).unwrap_err();
            assert!(err.contains("not a plain file name"), "{bad:?}: {err}");
        }
        assert!(fx.read("missing.sqlite").unwrap_err().contains("no fixture `missing.sqlite`"));
        assert!(fx.read("sub").unwrap_err().contains("not a regular file"));
        #[cfg(unix)]
        assert!(fx.read("link").unwrap_err().contains("not a regular file"));
    }

    #[test]
    fn bytes_are_read_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"first").unwrap();
        let fx = Fixtures::new(dir.path()).unwrap();
        assert_eq!(&*fx.read("f").unwrap(), b"first");
        std::fs::write(dir.path().join("f"), b"second").unwrap();
        assert_eq!(&*fx.read("f").unwrap(), b"first", "a plugin must not see a fixture change mid-run");
    }

    #[test]
    fn a_missing_directory_is_refused() {
        let err = Fixtures::new(Path::new("/nonexistent/fixtures")).unwrap_err();
        assert!(err.contains("/nonexistent/fixtures"), "{err}");
    }
}
