//! The labelled set: MATH- and GSM8K-style (gold, prediction) pairs in `labelled.jsonl`, each
//! labelled by hand as equivalent or not, many of them near misses (sign flips, off by one, open
//! against closed ends, swapped tuple entries, `0.33` against `1/3`, wrong units). The gold is the
//! reference as a rollout carries it (an answer or a worked solution); the prediction is a whole
//! completion, so extraction is tested too.
//!
//! Requires zero false equivalences and prints the agreement, with every disagreement.

use reward_math::MathReward;
use reward_sdk::{Message, Rollout};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    gold: String,
    prediction: String,
    equivalent: bool,
    note: String,
}

/// The agreement this set must keep (it is above 0.99 today); a drop below it is a regression.
const MIN_AGREEMENT: f64 = 0.97;

fn pairs() -> Vec<Pair> {
    include_str!("labelled.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("labelled.jsonl line {}: {e}", i + 1)))
        .collect()
}

#[test]
fn labelled_pairs_agree_with_no_false_equivalence() {
    let pairs = pairs();
    assert!(pairs.len() >= 150, "the labelled set has {} pairs", pairs.len());
    let rollouts: Vec<Rollout> = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| Rollout {
            id: i.to_string(),
            messages: vec![
                Message { role: "user".into(), content: "Solve.".into() },
                Message { role: "assistant".into(), content: p.prediction.clone() },
            ],
            completion: p.prediction.clone(),
            reference: serde_json::to_string(&p.gold).unwrap(),
            metadata: "{}".into(),
        })
        .collect();
    let started = std::time::Instant::now();
    let results = reward_sdk::score_batch::<MathReward>("{}", &rollouts);
    let elapsed = started.elapsed();
    let mut agree = 0;
    let mut false_equivalences = Vec::new();
    let mut misses = Vec::new();
    for (p, r) in pairs.iter().zip(&results) {
        let (said, why) = match r {
            Ok(s) => (Some(s.value == 1.0), s.reason.clone().unwrap_or_default()),
            Err(e) => (None, format!("{e:?}")),
        };
        let line = format!("[{}] gold {:?}, prediction {:?}: {why}", p.note, p.gold, p.prediction);
        match said {
            Some(s) if s == p.equivalent => agree += 1,
            Some(true) => false_equivalences.push(line),
            _ => misses.push(line),
        }
    }
    let n = pairs.len();
    let positives = pairs.iter().filter(|p| p.equivalent).count();
    let agreement = agree as f64 / n as f64;
    println!(
        "labelled: {n} pairs ({positives} equivalent, {} not), agreement {agree}/{n} = {agreement:.3}, \
         {} false equivalences, {} missed or undecided, {:.1} µs per pair",
        n - positives,
        false_equivalences.len(),
        misses.len(),
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
    for m in &misses {
        println!("  missed: {m}");
    }
    for f in &false_equivalences {
        println!("  FALSE EQUIVALENCE: {f}");
    }
    assert!(false_equivalences.is_empty(), "{} false equivalences:\n{}", false_equivalences.len(), false_equivalences.join("\n"));
    assert!(agreement >= MIN_AGREEMENT, "agreement {agreement:.3} is below {MIN_AGREEMENT}");
}
