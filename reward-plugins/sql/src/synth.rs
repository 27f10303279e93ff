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

use crate::analyze::{Atom, Conditions, Literal, Op};
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
        let names: Vec<String> =
            query_strings(&conn, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")?;
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
            let mut stmt =
                conn.prepare("SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list(?1)").map_err(|e| e.to_string())?;
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
    ///
    /// `conditions` are the gold's filters: besides the random rows, every table gets targeted
    /// rows for each conjunction of the gold's filters that names its columns (see
    /// [`Schema::targeted_rows`]), so that each comparison is exercised at its boundary by rows
    /// that pass the rest of the filter.
    pub fn synthesise(&self, spec: Spec, literals: &BTreeMap<String, Vec<Literal>>, conditions: &Conditions) -> Result<Vec<Db>, String> {
        (0..spec.databases)
            .map(|i| {
                let conn = create(&self.ddl)?;
                let mut rng = Rng::new(spec.seed ^ fnv(self.ddl.as_bytes()) ^ (i as u64).wrapping_mul(0xA24B_AED4_963E_E407));
                self.fill(&conn, spec.rows + 4 * i, i, literals, conditions, &mut rng)?;
                Db::lock_down(conn)
            })
            .collect()
    }

    fn fill(
        &self,
        conn: &Connection,
        rows: usize,
        db: usize,
        literals: &BTreeMap<String, Vec<Literal>>,
        conditions: &Conditions,
        rng: &mut Rng,
    ) -> Result<(), String> {
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
            let sql =
                format!("INSERT OR IGNORE INTO {} ({}) VALUES ({})", quote(&t.name), cols.join(", "), vec!["?"; cols.len()].join(", "));
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
                        let pool = values.get(&key).or_else(|| values.iter().find(|((t, _), _)| *t == key.0).map(|(_, v)| v))?;
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
                // In odd databases no random row passes a conjunction of the gold's filters: the
                // targeted rows alone decide what passes there.
                if db % 2 == 1 {
                    fail_conjunctions(t, &mut vals, conditions, rng);
                }
                stmt.execute(rusqlite::params_from_iter(vals.iter())).map_err(|e| format!("table {}: {e}", t.name))?;
                made.push(vals);
            }
            for vals in self.targeted_rows(t, db, made.len(), literals, conditions, &values, rng) {
                // A targeted row that breaks a constraint (a foreign key the gold's literal
                // does not meet, a CHECK) is left out; the random rows stand.
                let _ = stmt.execute(rusqlite::params_from_iter(vals.iter()));
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

    /// Rows of table `t` aimed at the gold's filters. For each conjunction of the gold's
    /// filters (`conditions.groups`) that compares a column of `t` with a literal:
    ///
    /// - two base rows passing every comparison of the conjunction on `t`'s columns, and a
    ///   third like them with NULL in its free nullable columns (even databases only);
    /// - for each such comparison, rows where its column holds the literal's neighbours
    ///   (`v - 1`, `v`, `v + 1` for a number, in the column's own type: text compares as text;
    ///   a string, its case twin and a near miss) while every *other* comparison of the
    ///   conjunction holds: the boundary rows that tell `>` from `>=` and `v` from `v + 1`.
    ///   Each neighbour gets a different number of rows (1, 2, 3, rotated per database), so
    ///   counts differ too;
    /// - for each comparison of the conjunction on *another* table's column, one partner row per
    ///   neighbour: it passes the conjunction's comparisons on `t` and holds the join key of that
    ///   neighbour's boundary rows (below), so what the other table's boundary row lets through
    ///   shows in `t`'s columns too (`SELECT MIN(T1.x) ... WHERE T2.y < 5`).
    ///
    /// The columns the conjunction leaves free are drawn as in random rows, so at least two
    /// passing rows differ in each aggregated or ordered column (MIN vs MAX, ASC vs DESC, SUM vs
    /// COUNT); a column the gold groups by holds one value in all the rows of a conjunction not in
    /// focus, so a group has several rows (MIN vs MAX per group). Join keys
    /// (`conditions.joins`) of the targeted rows hold one value per conjunction and neighbour in
    /// every table: the base rows of both sides of a join meet each other, a boundary row meets
    /// only its partners. Columns the other conjunctions compare fail them, so a row passes
    /// through its own conjunction only; in odd databases, when the gold has several
    /// conjunctions, only the one in focus gets targeted rows, so no other path to the result
    /// (a disjunct keeping the same first row of an ORDER BY ... LIMIT) hides its boundary.
    #[allow(clippy::too_many_arguments)]
    fn targeted_rows(
        &self,
        t: &Table,
        db: usize,
        first_row: usize,
        literals: &BTreeMap<String, Vec<Literal>>,
        conditions: &Conditions,
        values: &BTreeMap<(String, String), Vec<Value>>,
        rng: &mut Rng,
    ) -> Vec<Vec<Value>> {
        let empty = Vec::new();
        let global = literals.get("").unwrap_or(&empty);
        let single_pk = t.columns.iter().filter(|c| c.pk).count() == 1;
        let is_join = |c: &Column| {
            let n = c.name.to_lowercase();
            conditions.joins.iter().any(|(a, b)| *a == n || *b == n)
        };
        // A join key the targeted rows choose (a single-column primary key or a foreign key keeps
        // its own values): only a table with one gets partner rows.
        let keyed = t.columns.iter().any(|c| is_join(c) && !(c.pk && single_pk) && c.references.is_none());
        let has = |t: &Table, col: &str| t.columns.iter().any(|c| c.name.eq_ignore_ascii_case(col));
        let focus_group = self.focus_group(conditions, db);
        let mut out: Vec<Vec<Value>> = Vec::new();
        // Keys after the random rows' (the insert ignores a collision with a literal key).
        let mut next_pk = first_row;
        for (g, group) in conditions.groups.iter().enumerate() {
            // The atoms on this table's columns: (column index, index in the group, atom).
            let atoms: Vec<(usize, usize, &Atom)> = group
                .iter()
                .enumerate()
                .filter_map(|(ai, a)| t.columns.iter().position(|c| c.name.eq_ignore_ascii_case(&a.column)).map(|ci| (ci, ai, a)))
                .collect();
            if atoms.is_empty() && !t.columns.iter().any(is_join) {
                continue;
            }
            if db % 2 == 1 && focus_group.is_some_and(|f| f != g) {
                continue;
            }
            let isolation = isolation(&self.tables, conditions, db, g);
            // The atoms of this conjunction on another table's columns: (index in the group,
            // whether it is in focus, the atom, the affinity of its column there).
            let foreign: Vec<(usize, bool, &Atom, Affinity)> = if keyed {
                group
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| !has(t, &a.column))
                    .filter_map(|(ai, a)| {
                        let other = self.tables.iter().find(|o| o.name != t.name && has(o, &a.column))?;
                        let c = other.columns.iter().find(|c| c.name.eq_ignore_ascii_case(&a.column))?;
                        Some((ai, in_focus(&self.tables, conditions, db, g, ai), a, c.affinity))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            // Atoms of the other conjunctions on a column of this table that this one leaves free.
            let others_on = |ci: usize| -> Vec<&Atom> {
                if atoms.iter().any(|(i, _, _)| *i == ci) {
                    return Vec::new();
                }
                conditions
                    .groups
                    .iter()
                    .enumerate()
                    .filter(|(h, _)| *h != g)
                    .flat_map(|(_, o)| o.iter())
                    .filter(|a| t.columns[ci].name.eq_ignore_ascii_case(&a.column))
                    .collect()
            };
            // One value per grouping column for the rows of this conjunction not in focus.
            let shared: BTreeMap<usize, Value> = t
                .columns
                .iter()
                .enumerate()
                .filter(|(ci, c)| {
                    conditions.group_by.iter().any(|n| c.name.eq_ignore_ascii_case(n))
                        && !atoms.iter().any(|(i, _, _)| i == ci)
                        && !(c.pk && single_pk)
                        && c.references.is_none()
                        && !is_join(c)
                        && others_on(*ci).is_empty()
                })
                .map(|(ci, c)| {
                    let lits = literals.get(&c.name.to_lowercase()).unwrap_or(&empty);
                    (ci, draw(&Column { not_null: true, ..c.clone() }, lits, global, rng))
                })
                .collect();
            // A row with `fixed` columns set, the other atoms of the group satisfied, join keys
            // set to the conjunction's `slot`, the rest drawn.
            let mut row = |fixed: Option<(usize, Value)>, level: u8, slot: usize, nulls: bool, rng: &mut Rng| -> Option<Vec<Value>> {
                let mut vals = Vec::with_capacity(t.columns.len());
                for (ci, c) in t.columns.iter().enumerate() {
                    let lits = literals.get(&c.name.to_lowercase()).unwrap_or(&empty);
                    if let Some((fc, v)) = &fixed
                        && *fc == ci
                    {
                        vals.push(v.clone());
                        continue;
                    }
                    let on_c: Vec<&Atom> = atoms.iter().filter(|(i, _, _)| *i == ci).map(|(_, _, a)| *a).collect();
                    let v = if !on_c.is_empty() {
                        // Isolated: the value next to the boundary, so that a near miss
                        // refusing it refuses every row.
                        let edge = (isolation != Isolation::None)
                            .then(|| {
                                on_c.iter()
                                    .filter_map(|a| passing_edge(c.affinity, a))
                                    .find(|v| on_c.iter().all(|a| passes(c.affinity, v, a)))
                            })
                            .flatten();
                        match edge {
                            Some(v) => v,
                            None => satisfying(c, &on_c, rng)?,
                        }
                    } else if c.pk && single_pk {
                        next_pk += 1;
                        pk_value(c, next_pk - 1, &[])
                    } else if let Some((rt, rc)) = &c.references {
                        let key = (rt.to_lowercase(), rc.clone().unwrap_or_default().to_lowercase());
                        match values.get(&key).or_else(|| values.iter().find(|((t, _), _)| *t == key.0).map(|(_, v)| v)) {
                            Some(pool) if !pool.is_empty() => pool[rng.below(pool.len())].clone(),
                            _ => draw(c, lits, global, rng),
                        }
                    } else if is_join(c) {
                        number_value(c.affinity, join_key(g, slot))
                    } else if !others_on(ci).is_empty() {
                        // A column the other disjuncts compare: fail them, so the row passes
                        // through this conjunction only.
                        let others = others_on(ci);
                        let fails = |v: &Value| others.iter().all(|a| !passes(c.affinity, v, a));
                        extreme(c, level, db % 2 == 1)
                            .filter(fails)
                            .or_else(|| failing(c, &others, rng))
                            .unwrap_or_else(|| draw(c, lits, global, rng))
                    } else if let (0, Some(v)) = (level, shared.get(&ci)) {
                        v.clone()
                    } else if nulls && !c.not_null {
                        Value::Null
                    } else {
                        extreme(c, level, db % 2 == 1).unwrap_or_else(|| draw(c, lits, global, rng))
                    };
                    vals.push(v);
                }
                Some(vals)
            };
            // Base rows in even databases only: in odd ones the boundary rows alone decide
            // whether any row passes (DISTINCT, EXISTS-like results). The third holds NULL in
            // the free nullable columns (COUNT(col) vs COUNT(*)).
            for i in 0..if db.is_multiple_of(2) { 3 } else { 0 } {
                out.extend(row(None, 0, 0, i == 2, rng));
            }
            // Boundary rows: one comparison per database is in focus (see [`in_focus`]): its
            // boundary rows hold the extreme values of the free columns (the lowest in even
            // databases, the highest in odd ones), the value itself (`v`) more extreme than its
            // neighbours, so that rows which pass only the gold or only a near miss of it move
            // MIN, MAX and the first rows of an ORDER BY.
            for &(ci, ai, a) in &atoms {
                let c = &t.columns[ci];
                let focused = in_focus(&self.tables, conditions, db, g, ai);
                for (k, shift) in [-1i64, 0, 1].into_iter().enumerate() {
                    if !isolation.keeps(ai, a, c.affinity, k) {
                        continue;
                    }
                    let v = literal_value(c.affinity, &a.literal, shift);
                    for _ in 0..1 + (k + db) % 3 {
                        out.extend(row(Some((ci, v.clone())), extreme_level(focused, k), neighbour_slot(ai, k), false, rng));
                    }
                }
            }
            for &(ai, focused, a, affinity) in &foreign {
                for k in (0..3).filter(|&k| isolation.keeps(ai, a, affinity, k)) {
                    out.extend(row(None, extreme_level(focused, k), neighbour_slot(ai, k), false, rng));
                }
            }
        }
        out
    }

    /// The conjunction whose targeted rows alone stand in odd databases `db`, when the gold has
    /// several: in turn over the comparisons of all conjunctions, one per database pair.
    fn focus_group(&self, conditions: &Conditions, db: usize) -> Option<usize> {
        let owned: Vec<usize> = conditions
            .groups
            .iter()
            .enumerate()
            .flat_map(|(g, group)| {
                group
                    .iter()
                    .filter(|a| self.tables.iter().any(|t| t.columns.iter().any(|c| c.name.eq_ignore_ascii_case(&a.column))))
                    .map(move |_| g)
            })
            .collect();
        let several = owned.first().is_some_and(|f| owned.iter().any(|g| g != f));
        several.then(|| owned[(db / 2) % owned.len()])
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
        AuthAction::Pragma { pragma_name, .. } if ["table_info", "foreign_key_list"].contains(&pragma_name) => Authorization::Allow,
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

/// The join key of the targeted rows of conjunction `g`: `slot` 0 for its base rows, then one
/// per comparison and neighbour ([`neighbour_slot`]). Far from the small values random rows hold.
fn join_key(g: usize, slot: usize) -> f64 {
    (900_000 + 1_000 * g + slot) as f64
}

/// The join-key slot of the boundary rows of comparison `ai` (its index in the conjunction) at
/// neighbour `k` (0, 1, 2 for `v - 1`, `v`, `v + 1`).
fn neighbour_slot(ai: usize, k: usize) -> usize {
    1 + 3 * ai + k
}

/// The extreme level of the free columns of a boundary row at neighbour `k`: none out of focus,
/// the farthest for `v` itself.
fn extreme_level(focused: bool, k: usize) -> u8 {
    match (focused, k) {
        (false, _) => 0,
        (true, 1) => 2,
        (true, _) => 1,
    }
}

/// How the targeted rows of a conjunction of several comparisons are cut down in odd databases,
/// so that the result's mere existence tells a near miss (`SELECT DISTINCT T2.x ... WHERE
/// T2.x = 'a' AND T1.y < 5`: every passing row gives the same answer).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Isolation {
    /// All neighbours (even databases, and conjunctions of one comparison).
    None,
    /// Every comparison holds its value next to the boundary ([`passing_edge`]) where a row must
    /// pass it, and its boundary rows keep only that value and the failing neighbours: a near
    /// miss that refuses the value next to a boundary (`< v - 1` for `< v`) refuses every row.
    PassingEdge,
    /// Only the failing neighbours of comparison `ai` (the one in focus), the others at their
    /// passing edge: nothing passes the gold, and a near miss that admits one more value
    /// (`<= v` for `< v`) admits rows.
    FailingSide(usize),
}

impl Isolation {
    /// Whether the boundary rows of comparison `ai` (`a`, on a column of `affinity`) at neighbour
    /// `k` (0, 1, 2 for `v - 1`, `v`, `v + 1`) are kept.
    fn keeps(self, ai: usize, a: &Atom, affinity: Affinity, k: usize) -> bool {
        let v = literal_value(affinity, &a.literal, k as i64 - 1);
        match self {
            Isolation::None => true,
            Isolation::PassingEdge => !passes(affinity, &v, a) || passing_edge(affinity, a).is_some_and(|e| e == v),
            Isolation::FailingSide(f) => f == ai && !passes(affinity, &v, a),
        }
    }
}

/// The isolation of conjunction `g` in database `db`: none in even databases or for a
/// conjunction of fewer than two comparisons; otherwise passing edges in databases 1, 5, ...
/// and the failing side of the comparison in focus in databases 3, 7, ...
fn isolation(tables: &[Table], conditions: &Conditions, db: usize, g: usize) -> Isolation {
    let owned = |a: &Atom| tables.iter().any(|t| t.columns.iter().any(|c| c.name.eq_ignore_ascii_case(&a.column)));
    if db.is_multiple_of(2) || conditions.groups[g].iter().filter(|a| owned(a)).count() < 2 {
        return Isolation::None;
    }
    if (db / 2).is_multiple_of(2) {
        return Isolation::PassingEdge;
    }
    match (0..conditions.groups[g].len()).find(|&ai| in_focus(tables, conditions, db, g, ai)) {
        Some(f) => Isolation::FailingSide(f),
        None => Isolation::PassingEdge,
    }
}

/// The passing value of `a` next to its boundary: `v - 1` for `< v`, `v + 1` for `> v`, `v`
/// for `=`, `<=`, `>=` and LIKE (the pattern filled in), `v - 1` for `<>`; `None` when that
/// value does not pass (text order: `"10" < "9"`).
fn passing_edge(affinity: Affinity, a: &Atom) -> Option<Value> {
    let shift = match a.op {
        Op::Lt | Op::Ne => -1,
        Op::Gt => 1,
        Op::Eq | Op::Le | Op::Ge | Op::Like => 0,
    };
    let v = literal_value(affinity, &a.literal, shift);
    passes(affinity, &v, a).then_some(v)
}

/// Whether comparison `ai` of conjunction `g` is in focus in database `db`: one comparison (on a
/// column of any table) per database pair, in turn, so that the extreme rows of one table's
/// boundary are not matched by those of another's.
fn in_focus(tables: &[Table], conditions: &Conditions, db: usize, g: usize, ai: usize) -> bool {
    let mut n = 0;
    let mut index = None;
    for (h, group) in conditions.groups.iter().enumerate() {
        for (bi, a) in group.iter().enumerate() {
            if tables.iter().any(|t| t.columns.iter().any(|c| c.name.eq_ignore_ascii_case(&a.column))) {
                if (h, bi) == (g, ai) {
                    index = Some(n);
                }
                n += 1;
            }
        }
    }
    index.is_some_and(|i| i == (db / 2) % n)
}

/// Changes a random row of `t` so that it fails every conjunction of the gold's filters that
/// compares a column of `t` (odd databases: only targeted rows pass). A conjunction that still
/// passes gets one of its columns (not a single-column key) set to a value failing every
/// comparison of any conjunction on that column, or failing its own; a few rounds at most.
fn fail_conjunctions(t: &Table, vals: &mut [Value], conditions: &Conditions, rng: &mut Rng) {
    let single_pk = t.columns.iter().filter(|c| c.pk).count() == 1;
    let col = |a: &Atom| t.columns.iter().position(|c| c.name.eq_ignore_ascii_case(&a.column));
    for _ in 0..4 {
        let passing = conditions.groups.iter().find(|group| {
            let mut on_t = group.iter().filter_map(|a| col(a).map(|ci| (ci, a))).peekable();
            on_t.peek().is_some() && on_t.all(|(ci, a)| passes(t.columns[ci].affinity, &vals[ci], a))
        });
        let Some(group) = passing else { return };
        let mut cols: Vec<usize> = group.iter().filter_map(col).filter(|&ci| !(t.columns[ci].pk && single_pk)).collect();
        cols.dedup();
        if cols.is_empty() {
            return;
        }
        let ci = cols[rng.below(cols.len())];
        let c = &t.columns[ci];
        let all: Vec<&Atom> = conditions.groups.iter().flatten().filter(|a| c.name.eq_ignore_ascii_case(&a.column)).collect();
        let own: Vec<&Atom> = group.iter().filter(|a| c.name.eq_ignore_ascii_case(&a.column)).collect();
        match failing(c, &all, rng).or_else(|| failing(c, &own, rng)) {
            Some(v) => vals[ci] = v,
            None => return,
        }
    }
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

/// For the free columns of a targeted row: `level` 0 draws at random (`None`); 1 and 2 are
/// extreme values of the column's type, 2 the more extreme, the lowest (`high` false) or the
/// highest. A boundary row then moves MIN, MAX and the first row of an ORDER BY ... LIMIT, not
/// only the count.
fn extreme(c: &Column, level: u8, high: bool) -> Option<Value> {
    if level == 0 {
        return None;
    }
    let far = level == 2;
    Some(match c.affinity {
        // Text sorts bytewise: "" and " " before digits and letters, "~~~" and "~~" after.
        Affinity::Text => Value::Text(match (high, far) {
            (false, true) => String::new(),
            (false, false) => " ".into(),
            (true, true) => "~~~".into(),
            (true, false) => "~~".into(),
        }),
        a => {
            let n = if far { 2e6 } else { 1e6 };
            let n = if high { n } else { -n };
            if a == Affinity::Real { Value::Real(n) } else { Value::Integer(n as i64) }
        }
    })
}

/// A value for column `c` that passes every atom in `atoms` (all on `c`), or `None` when none
/// of the candidates (the literals' neighbours, then random draws) does.
fn satisfying(c: &Column, atoms: &[&Atom], rng: &mut Rng) -> Option<Value> {
    if let Some(like) = atoms.iter().find(|a| a.op == Op::Like) {
        let v = literal_value(c.affinity, &like.literal, 0);
        return atoms.iter().all(|a| a.op == Op::Like || passes(c.affinity, &v, a)).then_some(v);
    }
    let mut candidates: Vec<Value> = Vec::new();
    for a in atoms {
        for shift in [0, 1, -1, 2, -2, 5, -5, 10, -10] {
            candidates.push(literal_value(c.affinity, &a.literal, shift));
        }
        if let Literal::Number(n) = a.literal
            && c.affinity == Affinity::Text
        {
            // Text compares as text: "9" > "10"; a longer or shorter number may be needed.
            for v in [n * 10.0, (n / 10.0).trunc(), n * 10.0 + 9.0] {
                candidates.push(number_value(Affinity::Text, v));
            }
        }
    }
    let start = rng.below(candidates.len());
    let rotated = candidates[start..].iter().chain(&candidates[..start]);
    let found = rotated.filter(|v| atoms.iter().all(|a| passes(c.affinity, v, a))).cloned().collect::<Vec<_>>();
    if !found.is_empty() {
        return Some(found[rng.below(found.len())].clone());
    }
    (0..32).map(|_| draw(&Column { not_null: true, ..c.clone() }, &[], &[], rng)).find(|v| atoms.iter().all(|a| passes(c.affinity, v, a)))
}

/// A value for column `c` that fails every atom in `atoms` (the literals' neighbours, then the
/// lowest and highest values), or `None`.
fn failing(c: &Column, atoms: &[&Atom], rng: &mut Rng) -> Option<Value> {
    let mut candidates: Vec<Value> = Vec::new();
    for a in atoms {
        for shift in [0, 1, -1, 2, -2] {
            candidates.push(literal_value(c.affinity, &a.literal, shift));
        }
    }
    candidates.extend([extreme(c, 2, false), extreme(c, 2, true)].into_iter().flatten());
    let found: Vec<Value> = candidates.into_iter().filter(|v| atoms.iter().all(|a| !passes(c.affinity, v, a))).collect();
    (!found.is_empty()).then(|| found[rng.below(found.len())].clone())
}

/// Whether a value stored in a column of `affinity` passes `column op literal`, with SQLite's
/// rules: the column's affinity is applied to the literal (a number compared with a TEXT column
/// is compared as text), NULL passes nothing, numbers sort before text. `LIKE` is checked
/// case-insensitively with `%` and `_`.
fn passes(affinity: Affinity, v: &Value, a: &Atom) -> bool {
    use std::cmp::Ordering;
    let lit = match &a.literal {
        Literal::Number(n) => match affinity {
            Affinity::Text => Value::Text(real_text(*n)),
            _ => num(*n),
        },
        Literal::Text { value, .. } => match (affinity, value.trim().parse::<f64>()) {
            (Affinity::Text, _) | (_, Err(_)) => Value::Text(value.clone()),
            (_, Ok(n)) => num(n),
        },
    };
    if a.op == Op::Like {
        let (Value::Text(s), Literal::Text { value, .. }) = (v, &a.literal) else { return false };
        return like(value.to_lowercase().as_bytes(), s.to_lowercase().as_bytes());
    }
    let ord = match (v, &lit) {
        (Value::Null, _) | (_, Value::Null) => return false,
        (Value::Integer(_) | Value::Real(_), Value::Integer(_) | Value::Real(_)) => {
            let f = |x: &Value| match x {
                Value::Integer(i) => *i as f64,
                Value::Real(r) => *r,
                _ => 0.0,
            };
            f(v).total_cmp(&f(&lit))
        }
        (Value::Integer(_) | Value::Real(_), _) => Ordering::Less,
        (Value::Text(_), Value::Integer(_) | Value::Real(_)) => Ordering::Greater,
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => return false,
    };
    match a.op {
        Op::Eq => ord == Ordering::Equal,
        Op::Ne => ord != Ordering::Equal,
        Op::Lt => ord == Ordering::Less,
        Op::Le => ord != Ordering::Greater,
        Op::Gt => ord == Ordering::Greater,
        Op::Ge => ord != Ordering::Less,
        Op::Like => false,
    }
}

fn num(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e15 { Value::Integer(n as i64) } else { Value::Real(n) }
}

/// A number as SQLite writes it as text: `56`, `5.5`, `56.0` for a real written with a point.
fn real_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// SQL LIKE on lowercase bytes: `%` any run, `_` one byte.
fn like(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'%', rest)) => (0..=s.len()).any(|i| like(rest, &s[i..])),
        Some((b'_', rest)) => !s.is_empty() && like(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && like(rest, &s[1..]),
    }
}
