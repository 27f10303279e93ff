//! Fixture files a reward grants its plugin (`fixtures = "DIR"` in the rewards config): the one
//! thing a plugin may read from outside the sandbox. The plugin names a file; the host hands over
//! its bytes if it is a regular file directly inside the declared directory, and nothing else
//! (no paths, no `..`, no symlinks, no directory listing). Bytes are read once and kept, so every
//! call sees the same data and a plugin cannot observe the file changing under it.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Largest fixture file handed to a plugin: 512 MiB. The plugin's memory cap still applies to
/// the copy it receives.
pub const MAX_FIXTURE_BYTES: u64 = 512 << 20;
/// Most fixture bytes the host keeps in memory at once, over every reward's grant: 2 GiB. A read
/// that would pass it is refused with an error that says so (the plugin's rollout fails), rather
/// than letting a directory of large files take the host's memory.
pub const MAX_FIXTURE_CACHE_BYTES: u64 = 2 << 30;

/// Fixture bytes kept by every live [`Fixtures`] of the process.
static CACHED_BYTES: AtomicU64 = AtomicU64::new(0);
/// The next [`Fixtures::generation`].
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// A directory of fixture files granted to a reward, with the bytes read so far.
#[derive(Debug)]
pub struct Fixtures {
    dir: PathBuf,
    generation: u64,
    read: Mutex<HashMap<String, Arc<[u8]>>>,
}

impl Fixtures {
    /// Grants the regular files directly inside `dir`. Fails if `dir` is not a directory.
    pub fn new(dir: &Path) -> Result<Fixtures, String> {
        let dir = dir.canonicalize().map_err(|e| format!("fixtures directory {}: {e}", dir.display()))?;
        if !dir.is_dir() {
            return Err(format!("fixtures directory {} is not a directory", dir.display()));
        }
        let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
        Ok(Fixtures { dir, generation, read: Mutex::new(HashMap::new()) })
    }

    /// The granted directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A number no other grant of this process has: every load of a rewards config (a reload
    /// included) makes new grants, whose bytes are read afresh. What a grant hands out never
    /// changes, so (grant generation, rollout) identifies what a plugin saw.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The bytes of fixture `name`, read on first use and kept. The error names the problem.
    ///
    /// The file is opened once and everything is checked on that open handle: a symlink is
    /// refused by the open itself (`O_NOFOLLOW`), a FIFO or device cannot block it
    /// (`O_NONBLOCK`) and is refused as not a regular file, and the size is checked on the handle
    /// and again while reading, so nothing swapped in between a check and the read is handed over.
    pub fn read(&self, name: &str) -> Result<Arc<[u8]>, String> {
        check_name(name)?;
        if let Some(bytes) = self.read.lock().expect("fixture map poisoned").get(name) {
            return Ok(bytes.clone());
        }
        let bytes: Arc<[u8]> = read_regular_file(&self.dir.join(name), name)?.into();
        let mut read = self.read.lock().expect("fixture map poisoned");
        if let Some(bytes) = read.get(name) {
            return Ok(bytes.clone()); // another thread read it meanwhile
        }
        reserve(bytes.len() as u64, name)?;
        read.insert(name.to_owned(), bytes.clone());
        Ok(bytes)
    }

    /// The bytes this grant keeps.
    fn kept_bytes(&self) -> u64 {
        self.read.lock().map_or(0, |read| read.values().map(|b| b.len() as u64).sum())
    }
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        CACHED_BYTES.fetch_sub(self.kept_bytes(), Ordering::Relaxed);
    }
}

/// Counts `bytes` against [`MAX_FIXTURE_CACHE_BYTES`], or refuses.
fn reserve(bytes: u64, name: &str) -> Result<(), String> {
    let mut held = CACHED_BYTES.load(Ordering::Relaxed);
    loop {
        let total = held.saturating_add(bytes);
        if total > MAX_FIXTURE_CACHE_BYTES {
            return Err(format!(
                "fixture `{name}` ({bytes} bytes) would take the host's fixture memory to {total} bytes, over its cap of \
                 {MAX_FIXTURE_CACHE_BYTES}"
            ));
        }
        match CACHED_BYTES.compare_exchange_weak(held, total, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Ok(()),
            Err(now) => held = now,
        }
    }
}

/// Reads a regular file through one handle, refusing symlinks, FIFOs, devices and directories and
/// anything over [`MAX_FIXTURE_BYTES`].
fn read_regular_file(path: &Path, name: &str) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let not_regular = || format!("fixture `{name}` is not a regular file (symlinks, directories and special files are not granted)");
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(path).map_err(
            |e| match e.kind() {
                std::io::ErrorKind::NotFound => format!("no fixture `{name}` in the reward's fixtures directory"),
                // O_NOFOLLOW on a symlink.
                _ if e.raw_os_error() == Some(libc::ELOOP) => not_regular(),
                _ => format!("fixture `{name}`: {e}"),
            },
        )?;
    let meta = file.metadata().map_err(|e| format!("fixture `{name}`: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(not_regular());
    }
    let too_big = |len: u64| format!("fixture `{name}` is {len} bytes, over the host's cap of {MAX_FIXTURE_BYTES}");
    if meta.len() > MAX_FIXTURE_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow after the check: read one byte past the cap at most.
    file.take(MAX_FIXTURE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("fixture `{name}`: {e}"))?;
    if bytes.len() as u64 > MAX_FIXTURE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A fixture name is a plain file name: not empty, not `.` or `..`, no separators, no NUL.
fn check_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty() && name != "." && name != ".." && name.len() <= 255 && !name.contains(['/', '\\', '\0']);
    if plain { Ok(()) } else { Err(format!("fixture name {name:?} is not a plain file name (no paths, `..` or separators)")) }
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
    fn fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let fx = Fixtures::new(dir.path()).unwrap();
        // Before: the open blocked for ever waiting for a writer.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(fx.read("pipe")).unwrap());
        let got = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("reading a FIFO fixture must not block");
        assert!(got.unwrap_err().contains("not a regular file"));
    }

    #[test]
    fn every_load_is_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let a = Fixtures::new(dir.path()).unwrap();
        let b = Fixtures::new(dir.path()).unwrap();
        assert_ne!(a.generation(), b.generation());
    }

    #[test]
    fn kept_bytes_are_counted_and_released() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), vec![7u8; 1000]).unwrap();
        let fx = Fixtures::new(dir.path()).unwrap();
        fx.read("f").unwrap();
        fx.read("f").unwrap();
        assert_eq!(fx.kept_bytes(), 1000, "read once, kept once");
        // Other tests run in parallel and hold their own bytes: only check our share is counted.
        assert!(CACHED_BYTES.load(Ordering::Relaxed) >= 1000);
        assert!(reserve(MAX_FIXTURE_CACHE_BYTES, "huge").unwrap_err().contains("over its cap"));
    }

    #[test]
    fn a_missing_directory_is_refused() {
        let err = Fixtures::new(Path::new("/nonexistent/fixtures")).unwrap_err();
        assert!(err.contains("/nonexistent/fixtures"), "{err}");
    }
}
