//! Predicted queries scored per second through the sandboxed `sql` plugin on a Spider-sized
//! database (concert_singer's schema with 1,500 singers, 400 concerts, 4,000 appearances), against
//! the same execution and comparison compiled natively (rusqlite) in this process. A batch is a
//! GRPO-like mix: 8 questions x 8 predictions (rewrites that match, near misses that do not).
//!
//! It also writes the database and the (gold, predicted) pairs to `target/bench/sql/`, for the
//! plain-Python `sqlite3` scorer of the BIRD kind (`bench/python_sql_scorer.py`) to run on the same
//! inputs.
//!
//! Run: `scripts/build-plugins.sh && cargo bench -p reward-server --bench sql_sandbox`

mod common;

use std::fmt::Write;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use reward_server::engine::{Message, Rollout};

const DB: &str = "bench_concert";
const CONFIG: &str = r#"{"data": "fixtures"}"#;

/// (gold, [predictions]): the first two predictions of each are rewrites, the rest near misses.
const PAIRS: [(&str, [&str; 8]); 8] = [
    (
        "SELECT count(*) FROM singer WHERE age > 40",
        [
            "SELECT COUNT(1) FROM singer WHERE 40 < age",
            "SELECT count(singer_id) FROM singer AS s WHERE s.age > 40",
            "SELECT count(*) FROM singer WHERE age >= 40",
            "SELECT count(*) FROM singer",
            "SELECT count(*) FROM singer WHERE age < 40",
            "SELECT count(DISTINCT age) FROM singer WHERE age > 40",
            "SELECT count(*) FROM concert",
            "SELECT 1",
        ],
    ),
    (
        "SELECT name, country FROM singer WHERE age BETWEEN 30 AND 35",
        [
            "SELECT name, country FROM singer WHERE age >= 30 AND age <= 35",
            "SELECT s.name, s.country FROM singer s WHERE s.age BETWEEN 30 AND 35",
            "SELECT name, country FROM singer WHERE age > 30 AND age < 35",
            "SELECT name FROM singer WHERE age BETWEEN 30 AND 35",
            "SELECT name, country FROM singer WHERE age BETWEEN 30 AND 36",
            "SELECT name, country FROM singer",
            "SELECT country, name FROM singer WHERE age BETWEEN 31 AND 35",
            "SELECT name, song_name FROM singer WHERE age BETWEEN 30 AND 35",
        ],
    ),
    (
        "SELECT country, count(*) FROM singer GROUP BY country",
        [
            "SELECT country, COUNT(1) FROM singer GROUP BY country",
            "SELECT s.country, count(s.singer_id) FROM singer AS s GROUP BY s.country",
            "SELECT country, count(song_name) FROM singer GROUP BY country",
            "SELECT country, count(*) FROM singer WHERE age > 20 GROUP BY country",
            "SELECT DISTINCT country FROM singer",
            "SELECT country, max(age) FROM singer GROUP BY country",
            "SELECT country, count(*) FROM singer GROUP BY country HAVING count(*) > 100",
            "SELECT is_male, count(*) FROM singer GROUP BY is_male",
        ],
    ),
    (
        "SELECT name FROM stadium WHERE stadium_id IN (SELECT stadium_id FROM concert WHERE year = '2014')",
        [
            "SELECT s.name FROM stadium s WHERE EXISTS (SELECT 1 FROM concert c WHERE c.stadium_id = s.stadium_id AND c.year = '2014')",
            "SELECT DISTINCT stadium.name FROM stadium JOIN concert ON stadium.stadium_id = concert.stadium_id WHERE concert.year = '2014'",
            "SELECT name FROM stadium WHERE stadium_id IN (SELECT stadium_id FROM concert WHERE year = '2015')",
            "SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert WHERE year = '2014')",
            "SELECT stadium.name FROM stadium JOIN concert ON stadium.stadium_id = concert.stadium_id WHERE concert.year = '2014'",
            "SELECT name FROM stadium",
            "SELECT location FROM stadium WHERE stadium_id IN (SELECT stadium_id FROM concert WHERE year = '2014')",
            "SELECT name FROM stadium WHERE capacity > 5000",
        ],
    ),
    (
        "SELECT T2.name FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id WHERE T1.concert_id = 7",
        [
            "SELECT singer.name FROM singer JOIN singer_in_concert ON singer.singer_id = singer_in_concert.singer_id WHERE singer_in_concert.concert_id = 7",
            "SELECT s.name FROM singer s, singer_in_concert sc WHERE s.singer_id = sc.singer_id AND sc.concert_id = 7",
            "SELECT T2.name FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.concert_id = T2.singer_id WHERE T1.concert_id = 7",
            "SELECT T2.name FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id WHERE T1.concert_id = 8",
            "SELECT DISTINCT T2.country FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id WHERE T1.concert_id = 7",
            "SELECT name FROM singer WHERE singer_id = 7",
            "SELECT T2.name FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id",
            "SELECT name FROM singer LIMIT 10",
        ],
    ),
    (
        "SELECT name, capacity FROM stadium ORDER BY capacity DESC LIMIT 5",
        [
            "SELECT s.name, s.capacity FROM stadium AS s ORDER BY s.capacity DESC LIMIT 5",
            "SELECT name, capacity FROM stadium ORDER BY capacity DESC LIMIT 5 OFFSET 0",
            "SELECT name, capacity FROM stadium ORDER BY capacity ASC LIMIT 5",
            "SELECT name, capacity FROM stadium ORDER BY capacity DESC LIMIT 4",
            "SELECT name, capacity FROM stadium ORDER BY average DESC LIMIT 5",
            "SELECT name, capacity FROM stadium LIMIT 5",
            "SELECT capacity, name FROM stadium ORDER BY capacity DESC LIMIT 6",
            "SELECT name, highest FROM stadium ORDER BY capacity DESC LIMIT 5",
        ],
    ),
    (
        "SELECT avg(age), min(age), max(age) FROM singer WHERE country = 'France'",
        [
            "SELECT AVG(age), MIN(age), MAX(age) FROM singer WHERE country = 'France'",
            "SELECT avg(s.age), min(s.age), max(s.age) FROM singer s WHERE 'France' = s.country",
            "SELECT avg(age), min(age), max(age) FROM singer",
            "SELECT avg(age), min(age), max(age) FROM singer WHERE country = 'Netherlands'",
            "SELECT avg(age) FROM singer WHERE country = 'France'",
            "SELECT sum(age), min(age), max(age) FROM singer WHERE country = 'France'",
            "SELECT avg(age), min(age), max(age) FROM singer WHERE country <> 'France'",
            "SELECT count(*), min(age), max(age) FROM singer WHERE country = 'France'",
        ],
    ),
    (
        "SELECT DISTINCT country FROM singer WHERE age > 50",
        [
            "SELECT country FROM singer WHERE age > 50 GROUP BY country",
            "select distinct COUNTRY from SINGER where AGE > 50",
            "SELECT country FROM singer WHERE age > 50",
            "SELECT DISTINCT country FROM singer WHERE age >= 50",
            "SELECT DISTINCT country FROM singer WHERE age < 50",
            "SELECT DISTINCT country FROM singer",
            "SELECT DISTINCT name FROM singer WHERE age > 50",
            "SELECT DISTINCT is_male FROM singer WHERE age > 50",
        ],
    ),
];

/// A deterministic generator (64-bit LCG), so the database is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// concert_singer's schema with Spider-sized (and larger) tables.
fn database_script() -> String {
    let schema = std::fs::read_to_string(reward_sql::fixtures::scripts_dir().join("concert_singer.sql")).unwrap();
    let mut sql: String = schema.split("INSERT INTO").next().unwrap().to_owned();
    let mut rng = Lcg(7);
    let countries = ["France", "United States", "Netherlands", "Japan", "Brazil", "Kenya", "India", "Norway"];
    let words = ["Love", "Sun", "Hey", "Night", "Rain", "Road", "Fire", "Home", "Gold", "Blue"];
    sql.push_str("BEGIN;\n");
    for i in 1..=40 {
        let capacity = 1_000 + rng.below(60_000);
        let lowest = 100 + rng.below(900);
        writeln!(
            sql,
            "INSERT INTO stadium VALUES ({i}, 'Town {i}', 'Park {i}', {capacity}, {}, {lowest}, {});",
            lowest + 2_000,
            lowest + 500
        )
        .unwrap();
    }
    for i in 1..=1_500 {
        let country = countries[rng.below(countries.len() as u64) as usize];
        let song = if rng.below(10) == 0 { "NULL".to_owned() } else { format!("'{} {}'", words[rng.below(10) as usize], i) };
        let male = if rng.below(2) == 0 { "T" } else { "F" };
        writeln!(
            sql,
            "INSERT INTO singer VALUES ({i}, 'Singer {i}', '{country}', {song}, '{}', {}, '{male}');",
            1980 + rng.below(40),
            18 + rng.below(50)
        )
        .unwrap();
    }
    for i in 1..=400 {
        writeln!(
            sql,
            "INSERT INTO concert VALUES ({i}, 'Concert {i}', 'Theme {}', {}, '{}');",
            rng.below(50),
            1 + rng.below(40),
            2010 + rng.below(8)
        )
        .unwrap();
    }
    for _ in 0..4_000 {
        writeln!(sql, "INSERT OR IGNORE INTO singer_in_concert VALUES ({}, {});", 1 + rng.below(400), 1 + rng.below(1_500)).unwrap();
    }
    sql.push_str("COMMIT;\n");
    sql
}

fn rollouts() -> Vec<Rollout> {
    PAIRS
        .iter()
        .flat_map(|(gold, predictions)| predictions.iter().map(move |p| (*gold, *p)))
        .enumerate()
        .map(|(i, (gold, predicted))| {
            let completion = format!("```sql\n{predicted}\n```");
            Rollout {
                id: format!("q{i}"),
                messages: vec![
                    Message { role: "user".into(), content: "Answer with one SQLite query in a ```sql block.".into() },
                    Message { role: "assistant".into(), content: completion },
                ],
                reference: serde_json::json!({"gold_sql": gold, "db_id": DB}).to_string(),
                metadata: "{}".into(),
                group: None,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let out = root.join("target/bench/sql");
    let scripts = out.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(scripts.join(format!("{DB}.sql")), database_script()).unwrap();
    reward_sql::fixtures::build(&scripts, &out).unwrap();
    let rollouts = rollouts();
    let pairs: Vec<String> = rollouts
        .iter()
        .map(|r| {
            let reference: serde_json::Value = serde_json::from_str(&r.reference).unwrap();
            let predicted = r.completion().trim_start_matches("```sql\n").trim_end_matches("\n```");
            serde_json::json!({"db_id": DB, "gold": reference["gold_sql"], "predicted": predicted}).to_string()
        })
        .collect();
    std::fs::write(out.join("pairs.jsonl"), pairs.join("\n") + "\n").unwrap();
    common::compare_with_fixtures::<reward_sql::SqlReward>(c, "sql_spider_batch64", "sql", CONFIG, &rollouts, Some(&out));
}

criterion_group!(benches, bench);
criterion_main!(benches);
