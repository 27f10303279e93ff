//! Builds the fixture databases of the tests (`tests/fixtures/NAME.sql`) into `OUT_DIR/NAME.sqlite`,
//! for a reward's `fixtures = "OUT_DIR"` grant:
//!
//! ```sh
//! cd reward-plugins && cargo run -p reward-sql --example make_fixtures -- ../target/sql-fixtures
//! ```
//!
//! Any directory of SQLite files works the same (Spider's `database/DB/DB.sqlite` files, copied
//! flat as `DB.sqlite`).

use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: make_fixtures OUT_DIR");
        std::process::exit(64);
    }));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::create_dir_all(&out).expect("create the output directory");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&src)
        .expect("read tests/fixtures")
        .map(|e| e.expect("list tests/fixtures").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    scripts.sort();
    for script in scripts {
        let target = out.join(script.with_extension("sqlite").file_name().expect("a file name"));
        let tmp = target.with_extension("tmp");
        let _ = std::fs::remove_file(&tmp);
        let sql = std::fs::read_to_string(&script).expect("read the script");
        let conn = rusqlite::Connection::open(&tmp).expect("create the database");
        if let Err(e) = conn.execute_batch(&sql) {
            eprintln!("{}: {e}", script.display());
            std::process::exit(1);
        }
        drop(conn);
        std::fs::rename(&tmp, &target).expect("move the database into place");
        println!("{}", target.display());
    }
}
