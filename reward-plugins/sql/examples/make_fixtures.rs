//! Builds the fixture databases of the tests (`tests/fixtures/NAME.sql`) into `OUT_DIR/NAME.sqlite`,
//! for a reward's `fixtures = "OUT_DIR"` grant:
//!
//! ```sh
//! cd reward-plugins && cargo run -p reward-sql --example make_fixtures -- ../target/sql-fixtures
//! ```
//!
//! Any directory of SQLite files works the same (Spider's `database/DB/DB.sqlite` files, copied
//! flat as `DB.sqlite`).

use std::path::PathBuf;

fn main() {
    let Some(out) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: make_fixtures OUT_DIR");
        std::process::exit(64);
    };
    match reward_sql::fixtures::build(&reward_sql::fixtures::scripts_dir(), &out) {
        Ok(written) => written.iter().for_each(|db| println!("{}", db.display())),
        Err(e) => {
            eprintln!("make_fixtures: {e}");
            std::process::exit(1);
        }
    }
}
