//! Read-only access to the fixture files a reward grants (`fixtures = "DIR"` in the rewards
//! config), e.g. the SQLite databases a SQL reward executes against.
//!
//! On wasm32 [`read`] calls the contract's `fixtures.read` import (world
//! `reward-plugin-full`). A plugin that never calls it builds to a component that imports
//! nothing: the unused import is dropped when the component is linked.
//!
//! Natively (unit tests, native baselines) there is no host: [`read`] reads from a directory set
//! with [`set_native_dir`], with the same name rules as the host (a plain file name, no path
//! separators, no `..`), and fails as the host does when no directory is set.

/// Why a fixture name is refused, or `None` for a plain file name. The host applies the same rule.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty fixture name")
    } else if name == "." || name == ".." {
        Some("fixture name is not a plain file name")
    } else if name.contains(['/', '\\', '\0']) {
        Some("fixture name has a path separator")
    } else {
        None
    }
}

/// The bytes of fixture `name`, a plain file name such as `concert_singer.sqlite`.
///
/// # Errors
///
/// The text names the problem: no fixtures directory granted (natively: none set), no such
/// fixture, a name that is not a plain file name, a file over the host's size cap.
pub fn read(name: &str) -> Result<Vec<u8>, String> {
    if let Some(problem) = name_problem(name) {
        return Err(format!("{problem}: {name:?}"));
    }
    imp::read(name)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    pub fn read(name: &str) -> Result<Vec<u8>, String> {
        crate::bindings::reward::plugin::fixtures::read(name)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::path::PathBuf;
    use std::sync::Mutex;

    pub static DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

    pub fn read(name: &str) -> Result<Vec<u8>, String> {
        let dir = DIR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(dir) = dir else {
            return Err("this reward grants no fixtures directory".to_owned());
        };
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("no fixture named {name:?}"),
            _ => format!("fixture {name:?}: {e}"),
        })
    }
}

/// Natively only: the directory [`read`] reads from (process-wide), or `None` to grant none.
/// The stand-in for the host's `fixtures = "DIR"` grant in unit tests.
#[cfg(not(target_arch = "wasm32"))]
pub fn set_native_dir(dir: Option<std::path::PathBuf>) {
    *imp::DIR.lock().unwrap_or_else(|e| e.into_inner()) = dir;
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn native_reads_follow_the_host_rules() {
        for bad in ["", ".", "..", "a/b", "..\\x", "/etc/passwd"] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
            assert!(read(bad).is_err());
        }
        assert_eq!(name_problem("concert_singer.sqlite"), None);
        let dir = std::env::temp_dir().join(format!("reward-sdk-fixtures-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.bin"), b"bytes").unwrap();
        set_native_dir(None);
        assert!(read("a.bin").unwrap_err().contains("no fixtures directory"));
        set_native_dir(Some(dir.clone()));
        assert_eq!(read("a.bin").unwrap(), b"bytes");
        assert!(read("missing.bin").unwrap_err().contains("no fixture named"));
        set_native_dir(None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
