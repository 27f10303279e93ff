//! SQLite inside the sandbox: read-only databases and capped query execution.
//!
//! Every database a query sees is locked down the same way, whether it came from a fixture file
//! or was synthesised: an authorizer that allows reading and nothing else (no writes, ATTACH,
//! PRAGMA, schema changes, transactions, `load_extension`, and no `random()`/`randomblob()`),
//! `query_only`, and `sqlite3_limit` caps (SQL length, expression depth, compound SELECTs, string
//! and blob length, LIKE pattern length, function arguments, attached databases = 0). Rows and
//! output bytes are capped while reading. A runaway query (a cartesian join bomb, an endless
//! recursive CTE) is stopped by the host's fuel: a reproducible TIMEOUT. Natively (tests) a
//! progress handler stands in for fuel.

use std::sync::Arc;
#[cfg(not(target_arch = "wasm32"))]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, MAIN_DB};

/// Functions a query may not call: their results depend on chance (or they load code).
pub const DENIED_FUNCTIONS: [&str; 3] = ["random", "randomblob", "load_extension"];

/// Caps on one query; see the config for the defaults.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    /// Longest SQL text accepted, in bytes.
    pub max_sql_bytes: usize,
    /// Most rows read from a result.
    pub max_rows: usize,
    /// Most bytes of values read from a result (text and blobs by length, numbers as 8).
    pub max_output_bytes: usize,
    /// Deepest expression tree SQLite accepts.
    pub max_expr_depth: i32,
}

/// One value of a result row.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// SQL NULL.
    Null,
    /// An INTEGER.
    Int(i64),
    /// A REAL.
    Real(f64),
    /// TEXT.
    Text(String),
    /// A BLOB.
    Blob(Vec<u8>),
}

/// A query's result: its rows (each the same width) and its column count.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// Number of result columns.
    pub columns: usize,
    /// The rows, in the order SQLite returned them.
    pub rows: Vec<Vec<Val>>,
    /// Whether the query read any table (or view) of the database.
    pub reads_data: bool,
}

/// Why a query did not run to a result.
#[derive(Clone, Debug, PartialEq)]
pub enum ExecError {
    /// Refused before or while running: a write, ATTACH, PRAGMA, a denied function, several
    /// statements, an empty (comment-only) query, a cap.
    Refused(String),
    /// SQLite's own error (syntax, no such table, ...).
    Sql(String),
    /// Natively only: the step budget standing in for fuel ran out.
    Budget,
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::Refused(m) => write!(f, "refused: {m}"),
            ExecError::Sql(m) => write!(f, "sqlite: {m}"),
            ExecError::Budget => write!(f, "query ran out of budget"),
        }
    }
}

/// A locked-down, read-only database.
pub struct Db {
    conn: Connection,
    reads: Arc<AtomicBool>,
    limits_set: std::cell::Cell<Option<(usize, i32)>>,
    #[cfg(not(target_arch = "wasm32"))]
    budget: Arc<(AtomicU64, AtomicBool)>,
}

/// Natively, the progress handler's budget, in callbacks of 1000 VM steps each.
#[cfg(not(target_arch = "wasm32"))]
pub const NATIVE_STEP_BUDGET: u64 = 20_000;
#[cfg(not(target_arch = "wasm32"))]
const PROGRESS_OPS: i32 = 1000;

impl Db {
    /// Opens the bytes of a SQLite database file as an in-memory, read-only database.
    pub fn from_bytes(bytes: &[u8]) -> Result<Db, String> {
        let mut conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
        conn.deserialize_read_exact(MAIN_DB, bytes, bytes.len(), true).map_err(|e| e.to_string())?;
        // Reading the schema checks the file really is a database.
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0))
            .map_err(|e| format!("not a SQLite database: {e}"))?;
        Db::lock_down(conn)
    }

    /// Locks down a connection built in this process (a synthesised database).
    pub fn lock_down(mut conn: Connection) -> Result<Db, String> {
        conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>).map_err(|e| e.to_string())?;
        conn.pragma_update(None, "query_only", true).map_err(|e| e.to_string())?;
        for (limit, value) in [
            (Limit::SQLITE_LIMIT_ATTACHED, 0),
            (Limit::SQLITE_LIMIT_COMPOUND_SELECT, 64),
            (Limit::SQLITE_LIMIT_LENGTH, 1_000_000),
            (Limit::SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 1000),
            (Limit::SQLITE_LIMIT_FUNCTION_ARG, 64),
            (Limit::SQLITE_LIMIT_VDBE_OP, 100_000),
            (Limit::SQLITE_LIMIT_TRIGGER_DEPTH, 1),
        ] {
            conn.set_limit(limit, value).map_err(|e| e.to_string())?;
        }
        let reads = Arc::new(AtomicBool::new(false));
        let seen = reads.clone();
        conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(&ctx, &seen))).map_err(|e| e.to_string())?;
        // Stand-in for fuel in native tests only: in the sandbox, fuel decides TIMEOUT.
        #[cfg(not(target_arch = "wasm32"))]
        let budget = {
            let budget = Arc::new((AtomicU64::new(0), AtomicBool::new(false)));
            let b = budget.clone();
            conn.progress_handler(
                PROGRESS_OPS,
                Some(move || {
                    let over = b.0.fetch_add(1, Ordering::Relaxed) >= NATIVE_STEP_BUDGET;
                    if over {
                        b.1.store(true, Ordering::Relaxed);
                    }
                    over
                }),
            )
            .map_err(|e| e.to_string())?;
            budget
        };
        Ok(Db {
            conn,
            reads,
            limits_set: std::cell::Cell::new(None),
            #[cfg(not(target_arch = "wasm32"))]
            budget,
        })
    }

    /// Runs one query under `limits`.
    pub fn query(&self, sql: &str, limits: &QueryLimits) -> Result<Rows, ExecError> {
        if sql.len() > limits.max_sql_bytes {
            return Err(ExecError::Refused(format!("query is {} bytes, over the cap of {}", sql.len(), limits.max_sql_bytes)));
        }
        let want = (limits.max_sql_bytes, limits.max_expr_depth);
        if self.limits_set.get() != Some(want) {
            let _ = self.conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, limits.max_sql_bytes.min(i32::MAX as usize) as i32);
            let _ = self.conn.set_limit(Limit::SQLITE_LIMIT_EXPR_DEPTH, limits.max_expr_depth);
            self.limits_set.set(Some(want));
        }
        self.reads.store(false, Ordering::Relaxed);
        let mut stmt = self.conn.prepare(sql).map_err(|e| match e {
            rusqlite::Error::MultipleStatement => ExecError::Refused("more than one statement".into()),
            rusqlite::Error::Empty => ExecError::Refused("no statement (empty or comment only)".into()),
            rusqlite::Error::SqliteFailure(f, Some(m)) if f.code == rusqlite::ErrorCode::AuthorizationForStatementDenied => {
                ExecError::Refused(m)
            }
            other => ExecError::Sql(other.to_string()),
        })?;
        if !stmt.readonly() {
            return Err(ExecError::Refused("not a read-only statement".into()));
        }
        let reads_data = self.reads.load(Ordering::Relaxed);
        let columns = stmt.column_count();
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.budget.0.store(0, Ordering::Relaxed);
            self.budget.1.store(false, Ordering::Relaxed);
        }
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    #[cfg(not(target_arch = "wasm32"))]
                    if self.budget.1.load(Ordering::Relaxed) {
                        return Err(ExecError::Budget);
                    }
                    return Err(ExecError::Sql(e.to_string()));
                }
            };
            if out.len() == limits.max_rows {
                return Err(ExecError::Refused(format!("more than {} rows", limits.max_rows)));
            }
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                let v = match row.get_ref(i).map_err(|e| ExecError::Sql(e.to_string()))? {
                    ValueRef::Null => Val::Null,
                    ValueRef::Integer(n) => Val::Int(n),
                    ValueRef::Real(r) => Val::Real(r),
                    ValueRef::Text(t) => {
                        bytes += t.len();
                        Val::Text(String::from_utf8_lossy(t).into_owned())
                    }
                    ValueRef::Blob(b) => {
                        bytes += b.len();
                        Val::Blob(b.to_vec())
                    }
                };
                bytes += 8;
                values.push(v);
            }
            if bytes > limits.max_output_bytes {
                return Err(ExecError::Refused(format!("result over {} bytes", limits.max_output_bytes)));
            }
            out.push(values);
        }
        Ok(Rows { columns, rows: out, reads_data })
    }
}

fn authorize(ctx: &AuthContext<'_>, reads: &AtomicBool) -> Authorization {
    match ctx.action {
        AuthAction::Select | AuthAction::Recursive => Authorization::Allow,
        AuthAction::Read { table_name, .. } => {
            if !table_name.starts_with("sqlite_") {
                reads.store(true, Ordering::Relaxed);
            }
            Authorization::Allow
        }
        AuthAction::Function { function_name } => {
            if DENIED_FUNCTIONS.iter().any(|d| d.eq_ignore_ascii_case(function_name)) {
                Authorization::Deny
            } else {
                Authorization::Allow
            }
        }
        _ => Authorization::Deny,
    }
}
