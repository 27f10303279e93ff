//! Natively only: builds fixture databases from SQL scripts (`NAME.sql` -> `NAME.sqlite`), for the
//! tests, the `make_fixtures` example and the host's benchmarks and end-to-end tests. Inside the
//! sandbox the plugin only reads fixtures, through the host's `fixtures` grant.

use std::path::{Path, PathBuf};

/// The checked-in scripts: `tests/fixtures/*.sql` of this crate (Spider-like schemas with NULLs,
/// duplicates and ties where the labelled pairs need them).
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs every `*.sql` script of `scripts` into `out/NAME.sqlite` (replacing it atomically), and
/// returns the databases written, in name order.
pub fn build(scripts: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let mut sources: Vec<PathBuf> = std::fs::read_dir(scripts)
        .map_err(|e| format!("reading {}: {e}", scripts.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    sources.sort();
    let mut written = Vec::with_capacity(sources.len());
    for script in sources {
        let name = script.with_extension("sqlite");
        let target = out.join(name.file_name().expect("a script has a file name"));
        let tmp = target.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let sql = std::fs::read_to_string(&script).map_err(|e| format!("reading {}: {e}", script.display()))?;
        let conn = rusqlite::Connection::open(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
        conn.execute_batch(&sql).map_err(|e| format!("{}: {e}", script.display()))?;
        drop(conn);
        std::fs::rename(&tmp, &target).map_err(|e| format!("moving {} into place: {e}", target.display()))?;
        written.push(target);
    }
    Ok(written)
}
