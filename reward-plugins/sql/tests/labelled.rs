//! The labelled set: (gold, predicted) pairs over several schemas, each labelled by hand as
//! equivalent (must match) or a near miss (must not), on fixture databases and on databases
//! synthesised from the schema. Prints the agreement rate of each set.

mod common;

use common::{fenced, rollout, scored};
use serde_json::json;

/// `(database or schema, gold, predicted, equivalent)`.
type Pair = (&'static str, &'static str, &'static str, bool);

const FIXTURE_PAIRS: &[Pair] = &[
    // concert_singer: equivalent rewrites
    ("concert_singer", "SELECT count(*) FROM singer", "SELECT COUNT(1) FROM singer", true),
    (
        "concert_singer",
        "SELECT name, country, age FROM singer ORDER BY age DESC",
        "SELECT s.name, s.country, s.age FROM singer AS s ORDER BY s.age DESC",
        true,
    ),
    ("concert_singer", "SELECT DISTINCT country FROM singer WHERE age > 20", "select distinct COUNTRY from SINGER where AGE > 20", true),
    (
        "concert_singer",
        "SELECT name FROM singer WHERE age BETWEEN 29 AND 43",
        "SELECT name FROM singer WHERE age >= 29 AND age <= 43",
        true,
    ),
    (
        "concert_singer",
        "SELECT T2.name FROM singer_in_concert AS T1 JOIN singer AS T2 ON T1.singer_id = T2.singer_id WHERE T1.concert_id = 1",
        "SELECT singer.name FROM singer JOIN singer_in_concert ON singer.singer_id = singer_in_concert.singer_id WHERE singer_in_concert.concert_id = 1",
        true,
    ),
    (
        "concert_singer",
        "SELECT name FROM stadium WHERE stadium_id IN (SELECT stadium_id FROM concert WHERE year = '2014')",
        "SELECT s.name FROM stadium s WHERE EXISTS (SELECT 1 FROM concert c WHERE c.stadium_id = s.stadium_id AND c.year = '2014')",
        true,
    ),
    (
        "concert_singer",
        "SELECT \"name\", \"capacity\" FROM \"stadium\" WHERE \"average\" > 700",
        "SELECT capacity, name FROM stadium WHERE average > 700",
        true,
    ),
    (
        "concert_singer",
        "SELECT avg(age), min(age), max(age) FROM singer WHERE country = 'France'",
        "SELECT AVG(age), MIN(age), MAX(age) FROM singer WHERE 'France' = country",
        true,
    ),
    (
        "concert_singer",
        "SELECT country, count(*) FROM singer GROUP BY country",
        "SELECT country, COUNT(singer_id) FROM singer GROUP BY 1",
        true,
    ),
    (
        "concert_singer",
        "SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)",
        "SELECT name FROM stadium EXCEPT SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id",
        true,
    ),
    (
        "concert_singer",
        "SELECT song_name FROM singer WHERE age > (SELECT avg(age) FROM singer)",
        "SELECT song_name FROM singer WHERE age > (SELECT AVG(age) FROM singer AS s2)",
        true,
    ),
    ("concert_singer", "SELECT count(*) FROM concert WHERE year = '2014'", "SELECT count(*) FROM concert WHERE year = 2014", true),
    (
        "concert_singer",
        "SELECT name, capacity FROM stadium ORDER BY capacity DESC LIMIT 1",
        "SELECT name, capacity FROM stadium WHERE capacity = (SELECT max(capacity) FROM stadium)",
        true,
    ),
    (
        "concert_singer",
        "SELECT theme FROM concert WHERE year = '2014' OR year = '2015'",
        "SELECT theme FROM concert WHERE year IN ('2014', '2015')",
        true,
    ),
    // concert_singer: near misses
    ("concert_singer", "SELECT name FROM singer WHERE age > 32", "SELECT name FROM singer WHERE age >= 32", false),
    ("concert_singer", "SELECT count(*) FROM singer", "SELECT count(song_name) FROM singer", false),
    ("concert_singer", "SELECT DISTINCT country FROM singer", "SELECT country FROM singer", false),
    ("concert_singer", "SELECT name, age FROM singer ORDER BY age DESC", "SELECT name, age FROM singer ORDER BY age ASC", false),
    (
        "concert_singer",
        "SELECT name FROM singer WHERE country = 'France' AND age > 30",
        "SELECT name FROM singer WHERE country = 'France'",
        false,
    ),
    (
        "concert_singer",
        "SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id WHERE T1.year = '2015'",
        "SELECT T2.name FROM concert AS T1 JOIN stadium AS T2 ON T1.concert_id = T2.stadium_id WHERE T1.year = '2015'",
        false,
    ),
    ("concert_singer", "SELECT count(DISTINCT country) FROM singer", "SELECT count(country) FROM singer", false),
    (
        "concert_singer",
        "SELECT name FROM singer WHERE is_male = 'T' AND age > 30",
        "SELECT name FROM singer WHERE is_male = 'T' OR age > 30",
        false,
    ),
    // pets: equivalent rewrites
    ("pets", "SELECT count(*) FROM Student WHERE Age > 20", "select count(*) from student where age > 20", true),
    (
        "pets",
        "SELECT Fname FROM Student WHERE StuID IN (SELECT StuID FROM Has_Pet)",
        "SELECT s.Fname FROM Student s WHERE EXISTS (SELECT * FROM Has_Pet h WHERE h.StuID = s.StuID)",
        true,
    ),
    (
        "pets",
        "SELECT Fname FROM Student WHERE StuID NOT IN (SELECT StuID FROM Has_Pet)",
        "SELECT Fname FROM Student EXCEPT SELECT T1.Fname FROM Student T1 JOIN Has_Pet T2 ON T1.StuID = T2.StuID",
        true,
    ),
    ("pets", "SELECT PetType, avg(pet_age) FROM Pets GROUP BY PetType", "SELECT avg(pet_age), PetType FROM Pets GROUP BY PetType", true),
    (
        "pets",
        "SELECT max(weight), PetType FROM Pets GROUP BY PetType",
        "SELECT max(weight), PetType FROM Pets GROUP BY PetType ORDER BY PetType",
        true,
    ),
    (
        "pets",
        "SELECT Fname FROM Student WHERE Sex = 'F' ORDER BY Age",
        "SELECT `Fname` FROM [Student] WHERE Sex = 'F' ORDER BY Age ASC",
        true,
    ),
    ("pets", "SELECT count(*) FROM Pets WHERE weight > 10", "SELECT count(*) FROM Pets WHERE weight > 10.0", true),
    // pets: near misses
    ("pets", "SELECT Fname FROM Student WHERE Age >= 20", "SELECT Fname FROM Student WHERE Age > 20", false),
    ("pets", "SELECT DISTINCT LName FROM Student", "SELECT LName FROM Student", false),
    ("pets", "SELECT count(weight) FROM Pets", "SELECT count(*) FROM Pets", false),
    (
        "pets",
        "SELECT T1.Fname FROM Student AS T1 JOIN Has_Pet AS T2 ON T1.StuID = T2.StuID JOIN Pets AS T3 ON T2.PetID = T3.PetID WHERE T3.PetType = 'dog'",
        "SELECT DISTINCT T1.Fname FROM Student AS T1 JOIN Has_Pet AS T2 ON T1.StuID = T2.StuID JOIN Pets AS T3 ON T2.PetID = T3.PetID WHERE T3.PetType = 'dog'",
        false,
    ),
    (
        "pets",
        "SELECT Fname FROM Student WHERE Sex = 'F' ORDER BY Age",
        "SELECT Fname FROM Student WHERE Sex = 'F' ORDER BY Age DESC",
        false,
    ),
    ("pets", "SELECT count(*), Major FROM Student GROUP BY Major", "SELECT count(*), Major FROM Student", false),
    // company: equivalent rewrites
    (
        "company",
        "SELECT e.name, d.name FROM employees e JOIN departments d ON e.dept_id = d.dept_id",
        "SELECT employees.name, departments.name FROM departments, employees WHERE departments.dept_id = employees.dept_id",
        true,
    ),
    (
        "company",
        "SELECT avg(salary) FROM employees WHERE dept_id = 10",
        "SELECT sum(salary) * 1.0 / count(*) FROM employees WHERE dept_id = 10",
        true,
    ),
    (
        "company",
        "SELECT count(*) FROM employees WHERE hire_year BETWEEN 2012 AND 2016",
        "SELECT COUNT(*) FROM employees WHERE hire_year >= 2012 AND hire_year <= 2016",
        true,
    ),
    ("company", "SELECT budget FROM departments WHERE name = 'Legal'", "SELECT budget FROM departments WHERE name = \"Legal\"", true),
    (
        "company",
        "SELECT name FROM employees WHERE salary = (SELECT max(salary) FROM employees)",
        "SELECT name FROM employees ORDER BY salary DESC LIMIT 1",
        true,
    ),
    // company: near misses
    ("company", "SELECT name FROM employees WHERE salary > 60000", "SELECT name FROM employees WHERE salary >= 60000", false),
    (
        "company",
        "SELECT e.name, d.name FROM employees e JOIN departments d ON e.dept_id = d.dept_id",
        "SELECT e.name, d.name FROM employees e JOIN departments d ON e.emp_id = d.dept_id",
        false,
    ),
    ("company", "SELECT count(manager_id) FROM employees", "SELECT count(*) FROM employees", false),
    (
        "company",
        "SELECT name FROM departments WHERE dept_id NOT IN (SELECT dept_id FROM employees)",
        "SELECT name FROM departments d WHERE NOT EXISTS (SELECT 1 FROM employees e WHERE e.dept_id = d.dept_id)",
        false,
    ),
    (
        "company",
        "SELECT dept_id, max(salary) FROM employees GROUP BY dept_id",
        "SELECT dept_id, MAX(salary) FROM employees GROUP BY dept_id HAVING dept_id IS NOT NULL",
        false,
    ),
    (
        "company",
        "SELECT name, salary FROM employees ORDER BY salary DESC LIMIT 3",
        "SELECT name, salary FROM employees ORDER BY salary LIMIT 3",
        false,
    ),
    ("company", "SELECT name FROM employees WHERE manager_id IS NULL", "SELECT name FROM employees WHERE manager_id = NULL", false),
    // shop: equivalent rewrites and near misses
    ("shop", "SELECT DISTINCT product FROM orders", "SELECT product FROM orders GROUP BY product", true),
    (
        "shop",
        "SELECT c.name FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE o.order_id IS NULL",
        "SELECT name FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)",
        true,
    ),
    ("shop", "SELECT count(price) FROM orders", "SELECT count(*) FROM orders", false),
    ("shop", "SELECT DISTINCT product FROM orders WHERE quantity >= 5", "SELECT product FROM orders WHERE quantity >= 5", false),
    (
        "shop",
        "SELECT count(*) FROM customers WHERE city IS NULL OR city <> 'Paris'",
        "SELECT count(*) FROM customers WHERE city <> 'Paris'",
        false,
    ),
];

const HEAD: &str = "CREATE TABLE head (head_id INTEGER, name VARCHAR, born_state VARCHAR, age INTEGER)";
const DEPT: &str = "CREATE TABLE department (department_id INTEGER PRIMARY KEY, name TEXT, budget_in_billions REAL, num_employees INTEGER); CREATE TABLE management (department_id INTEGER REFERENCES department(department_id), head_id INTEGER, temporary_acting TEXT)";
const RACE: &str = "CREATE TABLE table_name_61 (year VARCHAR, points VARCHAR, team VARCHAR, chassis VARCHAR)";
const SHOP: &str = "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT); CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), amount REAL, status TEXT)";

const SYNTH_PAIRS: &[Pair] = &[
    // head (sql-create-context style, schema in the prompt)
    (HEAD, "SELECT COUNT(*) FROM head WHERE age > 56", "SELECT count(1) FROM head WHERE age > 56", true),
    (HEAD, "SELECT COUNT(*) FROM head WHERE age > 56", "SELECT COUNT(*) FROM head WHERE age >= 56", false),
    (HEAD, "SELECT name, born_state, age FROM head ORDER BY age", "SELECT name, born_state, age FROM head ORDER BY age DESC", false),
    (
        HEAD,
        "SELECT born_state FROM head GROUP BY born_state HAVING COUNT(*) >= 3",
        "SELECT born_state FROM head GROUP BY born_state HAVING count(*) > 2",
        true,
    ),
    (HEAD, "SELECT DISTINCT born_state FROM head WHERE age > 50", "SELECT born_state FROM head WHERE age > 50", false),
    (
        HEAD,
        "SELECT count(*) FROM head WHERE born_state = 'California'",
        "SELECT COUNT(*) FROM head WHERE born_state = \"California\"",
        true,
    ),
    (
        HEAD,
        "SELECT count(*) FROM head WHERE born_state = 'California'",
        "SELECT count(*) FROM head WHERE born_state LIKE 'california'",
        false,
    ),
    (HEAD, "SELECT name FROM head WHERE age BETWEEN 30 AND 40", "SELECT name FROM head WHERE age >= 30 AND age <= 40", true),
    (HEAD, "SELECT name FROM head WHERE age BETWEEN 30 AND 40", "SELECT name FROM head WHERE age > 30 AND age < 40", false),
    (HEAD, "SELECT count(name) FROM head", "SELECT count(*) FROM head", false),
    (HEAD, "SELECT avg(age) FROM head", "SELECT sum(age) * 1.0 / count(age) FROM head", true),
    (HEAD, "SELECT max(age), min(age) FROM head", "SELECT min(age), max(age) FROM head", true),
    (HEAD, "SELECT name FROM head WHERE born_state = 'Texas' AND age < 60", "SELECT name FROM head WHERE born_state = 'Texas'", false),
    // department / management (declared foreign key)
    (
        DEPT,
        "SELECT T1.name FROM department AS T1 JOIN management AS T2 ON T1.department_id = T2.department_id WHERE T2.temporary_acting = 'Yes'",
        "SELECT d.name FROM management m JOIN department d ON m.department_id = d.department_id WHERE m.temporary_acting = 'Yes'",
        true,
    ),
    (
        DEPT,
        "SELECT T1.name FROM department AS T1 JOIN management AS T2 ON T1.department_id = T2.department_id WHERE T2.temporary_acting = 'Yes'",
        "SELECT T1.name FROM department AS T1 JOIN management AS T2 ON T1.department_id = T2.head_id WHERE T2.temporary_acting = 'Yes'",
        false,
    ),
    (
        DEPT,
        "SELECT name FROM department WHERE department_id IN (SELECT department_id FROM management)",
        "SELECT name FROM department d WHERE EXISTS (SELECT 1 FROM management m WHERE m.department_id = d.department_id)",
        true,
    ),
    (
        DEPT,
        "SELECT count(*) FROM department WHERE department_id NOT IN (SELECT department_id FROM management)",
        "SELECT count(*) FROM department WHERE NOT EXISTS (SELECT 1 FROM management WHERE management.department_id = department.department_id)",
        false,
    ),
    (
        DEPT,
        "SELECT max(budget_in_billions), min(budget_in_billions) FROM department",
        "SELECT MAX(budget_in_billions), MIN(budget_in_billions) FROM department",
        true,
    ),
    (
        DEPT,
        "SELECT name, num_employees FROM department WHERE num_employees > 5 ORDER BY num_employees DESC",
        "SELECT d.name AS n, d.num_employees FROM department AS d WHERE d.num_employees > 5 ORDER BY d.num_employees DESC",
        true,
    ),
    (DEPT, "SELECT count(DISTINCT temporary_acting) FROM management", "SELECT count(temporary_acting) FROM management", false),
    (
        DEPT,
        "SELECT avg(num_employees) FROM department WHERE budget_in_billions > 10",
        "SELECT avg(num_employees) FROM department WHERE budget_in_billions >= 10",
        false,
    ),
    (
        DEPT,
        "SELECT count(*) FROM management WHERE temporary_acting = 'Yes'",
        "SELECT count(*) FROM management WHERE temporary_acting <> 'No'",
        false,
    ),
    // table_name_61 (numbers stored as text, double-quoted strings)
    (
        RACE,
        "SELECT team FROM table_name_61 WHERE points = \"5\" AND year > 1990",
        "SELECT team FROM table_name_61 WHERE year > 1990 AND points = '5'",
        true,
    ),
    (RACE, "SELECT chassis FROM table_name_61 WHERE year = 1990", "SELECT chassis FROM table_name_61 WHERE year = '1990'", true),
    (
        RACE,
        "SELECT COUNT(points) FROM table_name_61 WHERE team = \"ferrari\"",
        "SELECT COUNT(*) FROM table_name_61 WHERE team = \"ferrari\"",
        false,
    ),
    (
        RACE,
        "SELECT team FROM table_name_61 WHERE points = \"5\" OR points = \"6\"",
        "SELECT team FROM table_name_61 WHERE points IN ('5', '6')",
        true,
    ),
    (RACE, "SELECT team FROM table_name_61 WHERE year < 1995", "SELECT team FROM table_name_61 WHERE year <= 1995", false),
    (
        RACE,
        "SELECT chassis FROM table_name_61 WHERE team = \"ferrari\" AND points = \"5\"",
        "SELECT chassis FROM table_name_61 WHERE team = \"ferrari\"",
        false,
    ),
    (RACE, "SELECT team FROM table_name_61 WHERE chassis LIKE '%lotus%'", "SELECT team FROM table_name_61 WHERE chassis = 'lotus'", false),
    // customers / orders (NOT NULL foreign key)
    (
        SHOP,
        "SELECT c.name, sum(o.amount) FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id",
        "SELECT customers.name, SUM(orders.amount) FROM orders JOIN customers ON customers.id = orders.customer_id GROUP BY customers.id",
        true,
    ),
    (
        SHOP,
        "SELECT count(*) FROM orders WHERE status = 'shipped' AND amount > 100",
        "SELECT count(*) FROM orders WHERE status = 'shipped'",
        false,
    ),
    (
        SHOP,
        "SELECT DISTINCT city FROM customers WHERE id IN (SELECT customer_id FROM orders)",
        "SELECT DISTINCT c.city FROM customers c JOIN orders o ON o.customer_id = c.id",
        true,
    ),
    (
        SHOP,
        "SELECT name FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)",
        "SELECT c.name FROM customers c LEFT JOIN orders o ON o.customer_id = c.id WHERE o.id IS NULL",
        true,
    ),
    (SHOP, "SELECT name FROM customers WHERE city = 'Paris'", "SELECT name FROM customers WHERE city != 'Paris'", false),
    (SHOP, "SELECT status, count(*) FROM orders GROUP BY status", "SELECT count(*), status FROM orders GROUP BY status", true),
    (SHOP, "SELECT amount FROM orders ORDER BY amount DESC LIMIT 3", "SELECT amount FROM orders ORDER BY amount ASC LIMIT 3", false),
    (SHOP, "SELECT count(*) FROM orders WHERE amount >= 100", "SELECT count(*) FROM orders WHERE amount > 100", false),
    (SHOP, "SELECT name FROM customers ORDER BY name", "SELECT \"name\" FROM \"customers\" ORDER BY \"name\" ASC", true),
    (SHOP, "SELECT count(*) FROM orders", "SELECT count(*) FROM orders o JOIN customers c ON o.customer_id = c.id", true),
];

/// Scores every pair; returns (agreements, disagreements described).
fn agreement(pairs: &[Pair], synthesised: bool) -> (usize, Vec<String>) {
    agreement_with(pairs, synthesised, "{}")
}

fn agreement_with(pairs: &[Pair], synthesised: bool, config: &str) -> (usize, Vec<String>) {
    let mut agree = 0;
    let mut wrong = Vec::new();
    for (i, (db, gold, pred, equivalent)) in pairs.iter().enumerate() {
        let (prompt, reference) = if !synthesised {
            ("Answer with one SQLite query.".to_owned(), json!({"gold_sql": gold, "db_id": db}))
        } else if *db == HEAD || *db == RACE {
            // sql-create-context style: the schema is in the prompt (HEAD) or in `context` (RACE).
            if *db == HEAD {
                (format!("Given the schema: {db}\nWrite a SQLite query."), json!({"answer": gold}))
            } else {
                ("Write a SQLite query.".to_owned(), json!({"answer": gold, "context": db}))
            }
        } else {
            ("Write a SQLite query.".to_owned(), json!({"gold_sql": gold, "schema": db}))
        };
        let s = scored(config, rollout(&prompt, &fenced(pred), &reference));
        let matched = s.get("result_match") == Some(1.0);
        assert_eq!(s.get("executes"), Some(1.0), "pair {i} must execute: {pred} ({:?})", s.reason);
        if matched == *equivalent {
            agree += 1;
            assert_eq!(s.value, if matched { 1.0 } else { 0.1 });
        } else {
            wrong.push(format!("pair {i}: expected {}, got {} ({gold} vs {pred}): {:?}", equivalent, matched, s.reason));
        }
    }
    (agree, wrong)
}

#[test]
fn labelled_pairs_on_fixture_databases() {
    assert!(FIXTURE_PAIRS.len() >= 40);
    let (agree, wrong) = agreement(FIXTURE_PAIRS, false);
    let rate = agree as f64 / FIXTURE_PAIRS.len() as f64;
    println!("fixture databases: {agree}/{} pairs agree ({:.1}%)", FIXTURE_PAIRS.len(), rate * 100.0);
    assert!(wrong.is_empty(), "disagreements:\n{}", wrong.join("\n"));
}

#[test]
fn labelled_pairs_on_synthesised_databases() {
    assert!(SYNTH_PAIRS.len() >= 35);
    let (agree, wrong) = agreement(SYNTH_PAIRS, true);
    let rate = agree as f64 / SYNTH_PAIRS.len() as f64;
    println!("synthesised databases: {agree}/{} pairs agree ({:.1}%)", SYNTH_PAIRS.len(), rate * 100.0);
    assert!(wrong.is_empty(), "disagreements:\n{}", wrong.join("\n"));
}

#[test]
fn labelled_set_is_balanced_and_large_enough() {
    let all: Vec<&Pair> = FIXTURE_PAIRS.iter().chain(SYNTH_PAIRS).collect();
    assert!(all.len() >= 80, "{} pairs", all.len());
    let equivalent = all.iter().filter(|p| p.3).count();
    assert!(equivalent >= 30 && all.len() - equivalent >= 30, "{equivalent} equivalent of {}", all.len());
}

/// The synthesised databases are random: the labels must not hold only for the default seed.
#[test]
fn synthesised_agreement_holds_across_seeds() {
    let mut total = 0;
    let mut agree = 0;
    let mut wrong = Vec::new();
    for seed in 1..=8 {
        let (a, w) = agreement_with(SYNTH_PAIRS, true, &format!(r#"{{"synth": {{"seed": {seed}}}}}"#));
        total += SYNTH_PAIRS.len();
        agree += a;
        wrong.extend(w.into_iter().map(|w| format!("seed {seed}: {w}")));
    }
    let rate = agree as f64 / total as f64;
    println!("synthesised databases, seeds 1-8: {agree}/{total} agree ({:.1}%)\n{}", rate * 100.0, wrong.join("\n"));
    assert!(rate >= 0.95, "agreement {rate:.3} across seeds:\n{}", wrong.join("\n"));
}
