//! Seeded rollout corpora with realistic shapes and length distributions, for three task kinds:
//!
//! - `format`: FinQA-style numeric questions answered R1-style, `<think>…</think><answer>…</answer>`;
//!   reasoning length is lognormal around 2 KB (the `math`, `numeric_answer` and
//!   `think_answer_format` rewards);
//! - `sql`: text-to-SQL; the reference is `{"gold_sql", "schema"}` and the completion ends with
//!   the predicted query in a ```` ```sql ```` fence (the `sql` plugin's reference keys);
//! - `citations`: a question over a `<context>` of several KB in the prompt, answered in the Nova
//!   citation format with sources quoted from the context (the `grounded_answer` reward).
//!
//! Rollouts come in GRPO groups: `group` consecutive rollouts share a prompt and reference and
//! differ in their completions. A mix of right, wrong and malformed answers is drawn per rollout.
//! The same `(kind, count, group, seed)` always gives the same corpus, on every platform and
//! version: the generator is a SplitMix64 written here (ten lines) rather than a `rand` RNG, whose
//! streams may change between releases.

use serde_json::{Value, json};

/// Which task the rollouts are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Numeric answers in `<think>`/`<answer>` tags (FinQA-style).
    Format,
    /// Text-to-SQL with a schema and gold query.
    Sql,
    /// Grounded answers with Nova citations over a context.
    Citations,
}

/// One generated rollout: the prompt, the generated answer, the reference.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// Unique within the corpus.
    pub id: String,
    /// The system prompt.
    pub system: String,
    /// The user turn.
    pub prompt: String,
    /// The generated answer.
    pub completion: String,
    /// The dataset's reference answer.
    pub reference: Value,
}

impl Rollout {
    /// The Nova RFT reward-Lambda item: `{id, messages, reference_answer}`.
    pub fn to_nova(&self) -> Value {
        json!({
            "id": self.id,
            "messages": [
                {"role": "system", "content": self.system},
                {"role": "user", "content": self.prompt},
                {"role": "assistant", "content": self.completion},
            ],
            "reference_answer": self.reference,
        })
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, fully determined by its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
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

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Lognormal with the given median and shape `sigma`, clamped to `[lo, hi]`.
    pub fn lognormal(&mut self, median: f64, sigma: f64, lo: usize, hi: usize) -> usize {
        ((median * (sigma * self.normal()).exp()) as usize).clamp(lo, hi)
    }

    /// Exponential with the given mean (Poisson inter-arrival gaps).
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -(1.0 - self.unit()).ln() * mean
    }
}

/// Generates `count` rollouts of `kind`, in GRPO groups of `group` sharing a prompt.
pub fn generate(kind: Kind, count: usize, group: usize, seed: u64) -> Vec<Rollout> {
    let group = group.max(1);
    let mut rng = Rng::new(seed ^ (kind as u64).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut out = Vec::with_capacity(count);
    let mut prompt_no = 0;
    while out.len() < count {
        let task = match kind {
            Kind::Format => format_task(&mut rng),
            Kind::Sql => sql_task(&mut rng),
            Kind::Citations => citations_task(&mut rng),
        };
        for g in 0..group.min(count - out.len()) {
            let completion = match kind {
                Kind::Format => format_completion(&mut rng, &task),
                Kind::Sql => sql_completion(&mut rng, &task),
                Kind::Citations => citations_completion(&mut rng, &task),
            };
            out.push(Rollout {
                id: format!("{}-{prompt_no}-{g}", kind_name(kind)),
                system: task.system.clone(),
                prompt: task.prompt.clone(),
                completion,
                reference: task.reference.clone(),
            });
        }
        prompt_no += 1;
    }
    out
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Format => "format",
        Kind::Sql => "sql",
        Kind::Citations => "citations",
    }
}

/// A prompt, its reference, and what the completions are drawn from.
struct Task {
    system: String,
    prompt: String,
    reference: Value,
    /// format: the right answer as written; sql: the gold query; citations: the gold answer.
    answer: String,
    /// format: the value; citations: the gold source sentence ("" when unanswerable).
    value: f64,
    source: String,
    /// citations: the other sentences of the context, for wrong sources.
    others: Vec<String>,
    /// sql: the tables' column names, for wrong queries.
    columns: Vec<String>,
}

// ---- format -------------------------------------------------------------------------------------

const METRICS: [&str; 6] = ["revenue", "operating income", "net interest margin", "free cash flow", "total assets", "gross profit"];
const COMPANIES: [&str; 6] = ["Acme Corp", "Globex", "Initech", "Umbrella Holdings", "Hooli", "Vandelay Industries"];

fn format_task(rng: &mut Rng) -> Task {
    let metric = rng.pick(&METRICS);
    let company = rng.pick(&COMPANIES);
    let from = 50 + rng.below(950) as u64;
    let growth_tenths = rng.below(600) as i64 - 100; // -10.0% .. 49.9%
    let to = from as f64 * (1.0 + growth_tenths as f64 / 1000.0);
    // The value as the reference writes it (one decimal), so every right answer is right to it.
    let pct = ((to - from as f64) / from as f64 * 1000.0).round() / 10.0;
    let answer = format!("{pct:.1}%");
    Task {
        system: "Think step by step inside <think></think>, then give only the final answer inside <answer></answer>.".into(),
        prompt: format!("{company}'s {metric} was ${from} million in 2022 and ${to:.1} million in 2023. By what percent did it change?"),
        reference: json!({ "answer": answer }),
        answer,
        value: pct,
        source: String::new(),
        others: Vec::new(),
        columns: Vec::new(),
    }
}

fn reasoning(rng: &mut Rng, chars: usize, value: f64) -> String {
    let mut out = String::with_capacity(chars + 120);
    let mut step = 1;
    while out.len() < chars {
        let a = 10 + rng.below(990);
        let b = 10 + rng.below(990);
        match rng.below(4) {
            0 => out.push_str(&format!("Step {step}: the difference is {b} - {a} = {}. ", b as i64 - a as i64)),
            1 => out.push_str(&format!(
                "Step {step}: dividing, {a}/{b} = {:.4}, so the ratio is about {:.2}. ",
                a as f64 / b as f64,
                a as f64 / b as f64
            )),
            2 => out.push_str(&format!(
                "Let me double-check step {}: the change relative to the base gives {value:.3} percent. ",
                step.max(2) - 1
            )),
            _ => out.push_str("Wait, I should make sure the base year is the earlier one, since growth is measured from it. "),
        }
        step += 1;
    }
    out
}

fn format_completion(rng: &mut Rng, task: &Task) -> String {
    // Reasoning length: lognormal, median 2 KB, a long tail (p99 ~ 8 KB), under the 16k-char cap.
    let chars = rng.lognormal(2000.0, 0.6, 150, 15_000);
    let think = reasoning(rng, chars, task.value);
    let draw = rng.unit();
    if draw < 0.65 {
        format!("<think>{think}</think>\n<answer>{}</answer>", task.answer)
    } else if draw < 0.75 {
        // Right value, written as a decimal fraction.
        format!("<think>{think}</think>\n<answer>{:.4}</answer>", task.value / 100.0)
    } else if draw < 0.87 {
        // Wrong value.
        format!("<think>{think}</think>\n<answer>{:.1}%</answer>", task.value + 1.0 + rng.below(20) as f64)
    } else if draw < 0.94 {
        // Reasoning not closed into tags: format failure.
        format!("{think}\n<answer>{}</answer>", task.answer)
    } else {
        // No answer tag at all.
        format!("<think>{think}</think>\nThe answer is {}.", task.answer)
    }
}

// ---- sql ----------------------------------------------------------------------------------------

struct Table {
    name: &'static str,
    columns: &'static [(&'static str, &'static str)],
}

const TABLES: [Table; 3] = [
    Table {
        name: "employees",
        columns: &[("id", "INTEGER PRIMARY KEY"), ("name", "TEXT"), ("dept", "TEXT"), ("salary", "REAL"), ("hired", "DATE")],
    },
    Table {
        name: "orders",
        columns: &[("id", "INTEGER PRIMARY KEY"), ("customer", "TEXT"), ("amount", "REAL"), ("status", "TEXT"), ("placed", "DATE")],
    },
    Table {
        name: "flights",
        columns: &[("id", "INTEGER PRIMARY KEY"), ("origin", "TEXT"), ("dest", "TEXT"), ("distance", "INTEGER"), ("carrier", "TEXT")],
    },
];

fn sql_task(rng: &mut Rng) -> Task {
    let t = rng.pick(&TABLES);
    let schema: String = TABLES
        .iter()
        .map(|t| {
            let cols: Vec<String> = t.columns.iter().map(|(c, ty)| format!("{c} {ty}")).collect();
            format!("CREATE TABLE {} ({});", t.name, cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text_col = t.columns[1].0;
    let group_col = t.columns[2].0;
    let num_col = t.columns[3].0;
    let n = 10 * (1 + rng.below(100));
    let (question, gold) = match rng.below(4) {
        0 => (
            format!("List the {text_col} of every {} row with {num_col} above {n}, alphabetically.", t.name),
            format!("SELECT {text_col} FROM {} WHERE {num_col} > {n} ORDER BY {text_col}", t.name),
        ),
        1 => (
            format!("How many {} rows are there for each {group_col}?", t.name),
            format!("SELECT {group_col}, COUNT(*) FROM {} GROUP BY {group_col}", t.name),
        ),
        2 => (
            format!("What is the average {num_col} per {group_col}, highest first?",),
            format!("SELECT {group_col}, AVG({num_col}) AS avg_{num_col} FROM {} GROUP BY {group_col} ORDER BY avg_{num_col} DESC", t.name),
        ),
        _ => (
            format!("Which {text_col} has the largest {num_col}?"),
            format!("SELECT {text_col} FROM {} ORDER BY {num_col} DESC LIMIT 1", t.name),
        ),
    };
    Task {
        system: "You translate questions into SQLite queries. Reason in <think></think>, then give the query in a ```sql code block."
            .into(),
        prompt: format!("Database schema:\n{schema}\n\nQuestion: {question}"),
        reference: json!({ "gold_sql": gold, "schema": schema }),
        answer: gold,
        value: 0.0,
        source: t.name.into(),
        others: Vec::new(),
        columns: t.columns.iter().map(|(c, _)| (*c).to_owned()).collect(),
    }
}

fn sql_completion(rng: &mut Rng, task: &Task) -> String {
    let chars = rng.lognormal(700.0, 0.7, 80, 8_000);
    let mut think = String::with_capacity(chars + 100);
    while think.len() < chars {
        let col = rng.pick(&task.columns);
        think.push_str(&match rng.below(3) {
            0 => format!("The question is about the {} table; the column {col} looks relevant. ", task.source),
            1 => format!("I need to check whether {col} needs aggregation or just a filter. "),
            _ => "Ordering matters here, and I should not add a LIMIT unless the question asks for one. ".to_owned(),
        });
    }
    let draw = rng.unit();
    let query = if draw < 0.6 {
        task.answer.clone()
    } else if draw < 0.72 {
        // Equivalent, written differently.
        task.answer.to_lowercase().replace(" from ", "\nFROM ").replace(" where ", "\n  WHERE ")
    } else if draw < 0.88 {
        // Wrong column.
        let wrong = rng.pick(&task.columns).clone();
        task.answer.replacen(&task.columns[1], &wrong, 1).replacen("DESC", "ASC", 1)
    } else if draw < 0.95 {
        // Not valid SQL.
        task.answer.replacen("SELECT", "SELEC", 1)
    } else {
        return format!("<think>{think}</think>\nI am not sure which table to use.");
    };
    format!("<think>{think}</think>\n```sql\n{query};\n```")
}

// ---- citations ----------------------------------------------------------------------------------

const FIRST: [&str; 10] = ["Margit", "Tomas", "Aiko", "Rafael", "Ingrid", "Kwame", "Lucia", "Dmitri", "Saanvi", "Oskar"];
const LAST: [&str; 10] = ["Olsen", "Brandt", "Tanaka", "Moreno", "Lindqvist", "Mensah", "Ferraro", "Volkov", "Iyer", "Haug"];
const TOWNS: [&str; 10] =
    ["Halvard", "Brenmoor", "Ostrava Nova", "Kelderby", "San Aurelio", "Tiverholm", "Marsk", "Dunlow", "Vellan", "Corrin Bay"];
const BUILDINGS: [&str; 6] = ["lighthouse", "railway bridge", "town hall", "observatory", "harbour wall", "cathedral"];
const ADJ: [&str; 6] = ["old", "northern", "great", "iron", "western", "stone"];
const REFUSAL: &str = "I cannot answer this question based on the provided context.";

/// A context sentence and, for construction sentences, its question and answer.
fn sentence(rng: &mut Rng) -> (String, Option<(String, String)>) {
    let town = rng.pick(&TOWNS);
    match rng.below(3) {
        0 => {
            let (adj, b) = (rng.pick(&ADJ), rng.pick(&BUILDINGS));
            let name = format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST));
            let year = 1800 + rng.below(200);
            let years = 2 + rng.below(9);
            (
                format!("The {adj} {b} of {town} was completed in {year} after {years} years of construction led by the engineer {name}."),
                Some((format!("Who led the construction of the {adj} {b} of {town}?"), name)),
            )
        }
        1 => {
            let n = 1000 + rng.below(90_000);
            let year = 1950 + rng.below(70);
            (
                format!(
                    "According to the census of {year}, {town} had a population of {n} people, most of them working in fishing and trade."
                ),
                None,
            )
        }
        _ => {
            let km = 5 + rng.below(400);
            (format!("A river runs {km} kilometres from the hills above {town} to the sea, and it freezes in most winters."), None)
        }
    }
}

fn citations_task(rng: &mut Rng) -> Task {
    // Context size: lognormal around 4 KB.
    let chars = rng.lognormal(4000.0, 0.5, 800, 20_000);
    let mut sentences: Vec<String> = Vec::new();
    let mut questions: Vec<(usize, String, String)> = Vec::new();
    let mut len = 0;
    while len < chars || questions.is_empty() {
        let (s, qa) = sentence(rng);
        if sentences.contains(&s) {
            continue;
        }
        len += s.len() + 1;
        if let Some((q, a)) = qa {
            // A question is only fair if its answer is unique in the context.
            if !questions.iter().any(|(_, q2, _)| *q2 == q) {
                questions.push((sentences.len(), q, a));
            }
        }
        sentences.push(s);
    }
    let context = sentences.join(" ");
    let unanswerable = rng.unit() < 0.1;
    let (question, answer, source) = if unanswerable {
        (format!("Who designed the {} of {}?", rng.pick(&BUILDINGS), "Ashcombe"), String::new(), String::new())
    } else {
        let (i, q, a) = rng.pick(&questions).clone();
        (q, a, sentences[i].clone())
    };
    let reference = if unanswerable { json!({"answer": "", "unanswerable": true}) } else { json!({"answer": answer, "sources": [source]}) };
    let others = sentences.iter().filter(|s| **s != source).cloned().collect();
    Task {
        system: "Answer from the context only. Quote the supporting sentences verbatim as sources in the Nova citation format. If the context does not answer the question, say so.".into(),
        prompt: format!("<context>{context}</context>\n\nQuestion: {question}"),
        reference,
        answer,
        value: 0.0,
        source,
        others,
        columns: Vec::new(),
    }
}

fn nova_answer(parts: &[(String, Vec<String>)]) -> String {
    let mut out = String::from("<answer>\n");
    for (text, sources) in parts {
        out.push_str(&format!("  <answer_part>\n    <text>{text}</text>\n    <sources>\n"));
        for s in sources {
            out.push_str(&format!("      <source>{s}</source>\n"));
        }
        out.push_str("    </sources>\n  </answer_part>\n");
    }
    out.push_str("</answer>");
    out
}

fn citations_completion(rng: &mut Rng, task: &Task) -> String {
    let think_chars = rng.lognormal(500.0, 0.6, 50, 4_000);
    let mut think = String::new();
    while think.len() < think_chars {
        think.push_str("I look for the sentence in the context that names who did this, and quote it exactly. ");
    }
    let think = format!("<think>{think}</think>\n");
    if task.answer.is_empty() {
        // Unanswerable: mostly refused, sometimes a made-up answer.
        return if rng.unit() < 0.8 {
            format!("{think}<answer>{REFUSAL}</answer>")
        } else {
            let other = rng.pick(&task.others).clone();
            format!("{think}{}", nova_answer(&[(format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST)), vec![other])]))
        };
    }
    let draw = rng.unit();
    let answer = if draw < 0.6 {
        nova_answer(&[(task.answer.clone(), vec![task.source.clone()])])
    } else if draw < 0.72 {
        nova_answer(&[(format!("The engineer {} led the construction.", task.answer), vec![task.source.clone()])])
    } else if draw < 0.82 {
        // Right answer, wrong source.
        nova_answer(&[(task.answer.clone(), vec![rng.pick(&task.others).clone()])])
    } else if draw < 0.9 {
        // A paraphrased (not quoted) source.
        nova_answer(&[(task.answer.clone(), vec![format!("{} was the engineer in charge of building it.", task.answer)])])
    } else if draw < 0.95 {
        // Refused an answerable question.
        format!("<answer>{REFUSAL}</answer>")
    } else {
        // Truncated generation: no closing tag.
        let full = nova_answer(&[(task.answer.clone(), vec![task.source.clone()])]);
        full[..full.len() - "</answer>".len()].to_owned()
    };
    format!("{think}{answer}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_corpus_and_another_seed_another() {
        for kind in [Kind::Format, Kind::Sql, Kind::Citations] {
            let a = generate(kind, 40, 8, 7);
            let b = generate(kind, 40, 8, 7);
            let c = generate(kind, 40, 8, 8);
            assert_eq!(a.len(), 40);
            assert!(a.iter().zip(&b).all(|(x, y)| x.completion == y.completion && x.prompt == y.prompt));
            assert!(a.iter().zip(&c).any(|(x, y)| x.completion != y.completion));
        }
    }

    #[test]
    fn groups_share_a_prompt_and_ids_are_unique() {
        let rollouts = generate(Kind::Format, 24, 8, 1);
        for g in rollouts.chunks(8) {
            assert!(g.iter().all(|r| r.prompt == g[0].prompt && r.reference == g[0].reference));
        }
        assert_ne!(rollouts[0].prompt, rollouts[8].prompt);
        let ids: std::collections::HashSet<_> = rollouts.iter().map(|r| &r.id).collect();
        assert_eq!(ids.len(), 24);
    }

    #[test]
    fn format_completions_are_around_2kb_with_a_tail() {
        let rollouts = generate(Kind::Format, 2000, 1, 3);
        let mut lens: Vec<usize> = rollouts.iter().map(|r| r.completion.len()).collect();
        lens.sort();
        let median = lens[lens.len() / 2];
        assert!((1600..2600).contains(&median), "median {median}");
        assert!(lens[lens.len() * 99 / 100] > 2 * median, "p99 {}", lens[lens.len() * 99 / 100]);
        assert!(lens.iter().all(|&l| l < 16_000));
        let right = rollouts
            .iter()
            .filter(|r| r.completion.ends_with(&format!("<answer>{}</answer>", r.reference["answer"].as_str().unwrap())))
            .count();
        assert!((1100..1500).contains(&right), "{right} right answers of 2000");
    }

    #[test]
    fn sql_references_carry_gold_and_schema_and_answers_are_fenced() {
        for r in generate(Kind::Sql, 50, 4, 2) {
            assert!(r.reference["gold_sql"].as_str().unwrap().starts_with("SELECT"));
            assert!(r.reference["schema"].as_str().unwrap().contains("CREATE TABLE employees"));
            assert!(r.completion.starts_with("<think>"));
        }
    }

    #[test]
    fn citation_sources_are_quoted_from_the_context() {
        let rollouts = generate(Kind::Citations, 200, 4, 5);
        let mut quoted = 0;
        for r in &rollouts {
            let context = r.prompt.split("<context>").nth(1).unwrap().split("</context>").next().unwrap();
            assert!(context.len() >= 800, "{}", context.len());
            if let Some(gold) = r.reference["sources"].get(0).and_then(Value::as_str) {
                assert!(context.contains(gold));
                if r.completion.contains(&format!("<source>{gold}</source>")) {
                    quoted += 1;
                }
            }
        }
        assert!(quoted > 80, "{quoted}");
    }
}
