//! Databases synthesised from a schema, for datasets that have no rows anywhere
//! (sql-create-context: the CREATE TABLE statements are in the prompt).
//!
//! Several deterministic, seeded random databases: values respect each column's type affinity,
//! primary keys (unique), NOT NULL and declared foreign keys (drawn from the referenced column),
//! and include the gold query's literals and their neighbours (`v - 1`, `v`, `v + 1`; a string,
//! its case variant and near misses; LIKE patterns filled in), from small value pools so that
//! duplicates (a quarter of the rows repeat an earlier one), join matches and NULLs occur. A prediction must agree with the gold on every one:
//! test-suite accuracy without downloaded data.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::Value;

use crate::analyze::Literal;
use crate::exec::Db;

/// How many databases, how many rows, which seed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spec {
    /// Number of databases.
    pub databases: usize,
    /// Rows per table in the first database; each next one has 4 more.
    pub rows: usize,
    /// The PRNG seed.
    pub seed: u64,
}

/// The largest schema text accepted, in bytes.
pub const MAX_SCHEMA_BYTES: usize = 200_000;

/// splitmix64: a tiny seeded PRNG (no entropy source needed or wanted).
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// FNV-1a, for seeds derived from names.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Affinity {
    Integer,
    Real,
    Text,
    Numeric,
}

fn affinity(decl: &str) -> Affinity {
    let t = decl.to_ascii_uppercase();
    if t.contains("INT") {
        Affinity::Integer
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        Affinity::Text
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        Affinity::Real
    } else if t.is_empty() || t.contains("BLOB") {
        Affinity::Text
    } else {
        Affinity::Numeric
    }
}

#[derive(Clone, Debug)]
struct Column {
    name: String,
    affinity: Affinity,
    not_null: bool,
    pk: bool,
    /// (table, column) this column references.
    references: Option<(String, Option<String>)>,
}

#[derive(Clone, Debug)]
struct Table {
    name: String,
    columns: Vec<Column>,
}

/// The schema as SQLite understood it.
#[derive(Clone, Debug)]
pub struct Schema {
    ddl: String,
    tables: Vec<Table>,
}

impl Schema {
    /// Runs the schema's statements (CREATE TABLE, CREATE INDEX, CREATE VIEW and INSERT only) in
    /// an empty database and reads back its tables. The error says why SQLite refused it.
    pub fn parse(ddl: &str) -> Result<Schema, String> {
        if ddl.len() > MAX_SCHEMA_BYTES {
            return Err(format!("schema is {} bytes, over the cap of {MAX_SCHEMA_BYTES}", ddl.len()));
        }
        let conn = create(ddl)?;
        let names: Vec<String> = query_strings(
            &conn,
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        )?;
        if names.is_empty() {
            return Err("schema creates no table".into());
        }
        let mut tables = Vec::new();
        for name in names {
            let mut columns = Vec::new();
            let mut stmt = conn.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1)").map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map([&name], |r| {
                    Ok(Column {
                        name: r.get(0)?,
                        affinity: affinity(&r.get::<_, String>(1)?),
                        not_null: r.get::<_, i64>(2)? != 0,
                        pk: r.get::<_, i64>(3)? != 0,
                        references: None,
                    })
                })
                .map_err(|e| e.to_string())?;
            for c in rows {
                columns.push(c.map_err(|e| e.to_string())?);
            }
            let mut stmt = conn.prepare("SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list(?1)").map_err(|e| e.to_string())?;
            let fks = stmt
                .query_map([&name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?)))
                .map_err(|e| e.to_string())?;
            for fk in fks {
                let (from, table, to) = fk.map_err(|e| e.to_string())?;
                if let Some(c) = columns.iter_mut().find(|c| c.name.eq_ignore_ascii_case(&from)) {
                    c.references = Some((table, to));
                }
            }
            tables.push(Table { name, columns });
        }
        Ok(Schema { ddl: ddl.to_owned(), tables })
    }

    /// Every column name, lowercase.
    pub fn column_names(&self) -> BTreeSet<String> {
        self.tables.iter().flat_map(|t| t.columns.iter().map(|c| c.name.to_lowercase())).collect()
    }

    /// The synthesised databases, locked down.
    pub fn synthesise(&self, spec: Spec, literals: &BTreeMap<String, Vec<Literal>>) -> Result<Vec<Db>, String> {
        (0..spec.databases)
            .map(|i| {
                let conn = create(&self.ddl)?;
                let mut rng = Rng::new(spec.seed ^ fnv(self.ddl.as_bytes()) ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407));
                self.fill(&conn, spec.rows + 4 * i, literals, &mut rng)?;
                Db::lock_down(conn)
            })
            .collect()
    }

    fn fill(&self, conn: &Connection, rows: usize, literals: &BTreeMap<String, Vec<Literal>>, rng: &mut Rng) -> Result<(), String> {
        // Referenced tables first, so foreign keys draw from real values.
        let mut order: Vec<usize> = Vec::new();
        let mut visiting = BTreeSet::new();
        for i in 0..self.tables.len() {
            self.visit(i, &mut order, &mut visiting);
        }
        let mut values: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
        let empty = Vec::new();
        let global = literals.get("").unwrap_or(&empty);
        for &ti in &order {
            let t = &self.tables[ti];
            let cols: Vec<String> = t.columns.iter().map(|c| quote(&c.name)).collect();
            let sql = format!(
                "INSERT OR IGNORE INTO {} ({}) VALUES ({})",
                quote(&t.name),
                cols.join(", "),
                vec!["?"; cols.len()].join(", ")
            );
            let mut stmt = conn.prepare(&sql).map_err(|e| format!("table {}: {e}", t.name))?;
            let single_pk = t.columns.iter().filter(|c| c.pk).count() == 1;
            let mut made: Vec<Vec<Value>> = Vec::with_capacity(rows);
            for row in 0..rows {
                // A quarter of the rows repeat an earlier row (all but a single-column key), so
                // duplicates also occur among the few rows a selective condition keeps: a
                // missing DISTINCT shows up.
                let twin = (row > 0 && rng.chance(0.25)).then(|| made[rng.below(made.len())].clone());
                let mut vals = Vec::with_capacity(t.columns.len());
                for (ci, c) in t.columns.iter().enumerate() {
                    if let Some(twin) = &twin
                        && !(c.pk && single_pk)
                    {
                        vals.push(twin[ci].clone());
                        continue;
                    }
                    let lits = literals.get(&c.name.to_lowercase()).unwrap_or(&empty);
                    let v = if c.pk && single_pk {
                        pk_value(c, row, lits)
                    } else if let Some(v) = c.references.as_ref().and_then(|(rt, rc)| {
                        let key = (rt.to_lowercase(), rc.clone().unwrap_or_default().to_lowercase());
                        let pool = values.get(&key).or_else(|| {
                            values.iter().find(|((t, _), _)| *t == key.0).map(|(_, v)| v)
                        })?;
                        if pool.is_empty() || (!c.not_null && rng.chance(0.08)) {
                            return Some(Value::Null);
                        }
                        Some(pool[rng.below(pool.len())].clone())
                    }) {
                        v
                    } else {
                        draw(c, lits, global, rng)
                    };
                    vals.push(v);
                }
                stmt.execute(rusqlite::params_from_iter(vals.iter())).map_err(|e| format!("table {}: {e}", t.name))?;
                made.push(vals);
            }
            for c in &t.columns {
                let sql = format!("SELECT DISTINCT {} FROM {}", quote(&c.name), quote(&t.name));
                let mut stmt = conn.prepare(&sql).map_err(|e| e.to_string())?;
                let vals: Vec<Value> = stmt
                    .query_map([], |r| r.get::<_, Value>(0))
                    .map_err(|e| e.to_string())?
                    .filter_map(Result::ok)
                    .filter(|v| *v != Value::Null)
                    .collect();
                values.insert((t.name.to_lowercase(), c.name.to_lowercase()), vals.clone());
                if c.pk {
                    values.insert((t.name.to_lowercase(), String::new()), vals);
                }
            }
        }
        Ok(())
    }

    fn visit(&self, i: usize, order: &mut Vec<usize>, visiting: &mut BTreeSet<usize>) {
        if order.contains(&i) || !visiting.insert(i) {
            return;
        }
        for c in &self.tables[i].columns {
            if let Some((rt, _)) = &c.references
                && let Some(j) = self.tables.iter().position(|t| t.name.eq_ignore_ascii_case(rt))
            {
                self.visit(j, order, visiting);
            }
        }
        order.push(i);
    }
}

/// A fresh database with the schema created in it; only schema statements and INSERTs run.
fn create(ddl: &str) -> Result<Connection, String> {
    let mut conn = Connection::open_in_memory().map_err(|e| e.to_string())?;
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0).map_err(|e| e.to_string())?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, 1_000_000).map_err(|e| e.to_string())?;
    conn.authorizer(Some(|ctx: AuthContext<'_>| match ctx.action {
        AuthAction::CreateTable { .. }
        | AuthAction::CreateIndex { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::Insert { .. }
        | AuthAction::Update { .. }
        | AuthAction::Read { .. }
        | AuthAction::Select
        | AuthAction::Function { function_name: _ }
        | AuthAction::Reindex { .. } => Authorization::Allow,
        AuthAction::Pragma { pragma_name, .. }
            if ["table_info", "foreign_key_list"].contains(&pragma_name) =>
        {
            Authorization::Allow
        }
        _ => Authorization::Deny,
    }))
    .map_err(|e| e.to_string())?;
    conn.execute_batch(ddl).map_err(|e| e.to_string())?;
    Ok(conn)
}

fn query_strings(conn: &Connection, sql: &str) -> Result<Vec<String>, String> {
    let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| e.to_string())?;
    rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Words for text columns: few, so values repeat; a capitalised twin catches case mistakes.
const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "Delta", "delta", "omega"];

fn pk_value(c: &Column, row: usize, lits: &[Literal]) -> Value {
    // The gold's literals for this column come first, so `WHERE id = 7` finds a row.
    if let Some(l) = lits.get(row) {
        return literal_value(c.affinity, l, 0);
    }
    match c.affinity {
        Affinity::Text => Value::Text(format!("k{}", row + 1)),
        _ => Value::Integer(row as i64 + 1),
    }
}

/// A literal (`shift` 0) or its neighbour (`shift` -1 or 1), as a value of `affinity`.
fn literal_value(affinity: Affinity, l: &Literal, shift: i64) -> Value {
    match l {
        Literal::Number(n) => number_value(affinity, n + shift as f64),
        Literal::Text { value, like } => {
            if !like
                && affinity != Affinity::Text
                && let Ok(n) = value.trim().parse::<f64>()
            {
                return number_value(affinity, n + shift as f64);
            }
            let base = if *like { value.replace('%', "ab").replace('_', "z") } else { value.clone() };
            match shift {
                0 => Value::Text(base),
                -1 => Value::Text(if value.chars().any(char::is_lowercase) { value.to_uppercase() } else { value.to_lowercase() }),
                _ => Value::Text(format!("{}x", base.trim_end_matches('%'))),
            }
        }
    }
}

fn number_value(affinity: Affinity, n: f64) -> Value {
    let integral = n.fract() == 0.0 && n.abs() < 1e15;
    match affinity {
        Affinity::Text => Value::Text(if integral { format!("{}", n as i64) } else { format!("{n}") }),
        Affinity::Real => Value::Real(n),
        _ if integral => Value::Integer(n as i64),
        _ => Value::Real(n),
    }
}

fn draw(c: &Column, lits: &[Literal], global: &[Literal], rng: &mut Rng) -> Value {
    if !c.not_null && rng.chance(0.12) {
        return Value::Null;
    }
    if !lits.is_empty() && rng.chance(0.5) {
        let l = &lits[rng.below(lits.len())];
        let shift = [0, 0, -1, 1][rng.below(4)];
        return literal_value(c.affinity, l, shift);
    }
    let fitting: Vec<&Literal> = global
        .iter()
        .filter(|l| match (l, c.affinity) {
            (Literal::Number(_), Affinity::Text) => true,
            (Literal::Text { .. }, Affinity::Text) => true,
            (Literal::Number(_), _) => true,
            (Literal::Text { value, .. }, _) => value.trim().parse::<f64>().is_ok(),
        })
        .collect();
    if !fitting.is_empty() && rng.chance(0.2) {
        let shift = [0, 0, -1, 1][rng.below(4)];
        return literal_value(c.affinity, fitting[rng.below(fitting.len())], shift);
    }
    match c.affinity {
        Affinity::Integer => Value::Integer(rng.below(10) as i64),
        Affinity::Real => Value::Real(rng.below(20) as f64 / 2.0),
        Affinity::Numeric => {
            if rng.chance(0.7) {
                Value::Integer(rng.below(10) as i64)
            } else {
                Value::Real(rng.below(20) as f64 / 4.0)
            }
        }
        Affinity::Text => {
            if rng.chance(0.25) {
                Value::Text(rng.below(10).to_string())
            } else {
                Value::Text(WORDS[rng.below(WORDS.len())].to_owned())
            }
        }
    }
}
