//! A guest that misbehaves on request, for the host's limit tests.
//!
//! The rollout's completion selects what happens:
//! - `loop`: spins forever (fuel or the epoch deadline must end it);
//! - `alloc`: allocates until memory runs out;
//! - `stack`: recurses with a big frame until the shadow stack (in linear memory) overflows;
//! - `deep`: recurses with a small frame until the wasm call stack overflows;
//! - `panic`: panics;
//! - `nan` / `inf`: returns a non-finite score;
//! - `big-reason N`: returns a reason of N bytes;
//! - `many-metrics N`: returns N metrics;
//! - `invalid`: reports the rollout as invalid input;
//! - `meter-refill`: ends its own rollout and begins the next ones itself, forever, to get a fresh
//!   budget each time (the host must stop it at the call's last rollout);
//! - `meter-past`: the same for 100 steps past its own index, then panics (a trap that claims a
//!   rollout past the call's end);
//! - `meter-glue-spin`: ends its own rollout, then spins between rollouts (the glue budget must
//!   stop it);
//! - `work N`: burns a deterministic amount of CPU proportional to N, then scores 1;
//! - `judge TEXT`: asks the granted judge with one user turn, TEXT, and scores the answer read as
//!   a number (the answer is the reason; an answer that is no number fails the rollout);
//! - `judge-swallow TEXT`: the same, but scores 0 when the call fails (the host must still fail
//!   the rollout with `JUDGE_ERROR`);
//! - `judge-many N`: asks N different questions and scores the number of answers;
//! - `embed A | B`: asks the judge for the embeddings of A and B and scores their cosine;
//! - anything else: scores the completion's length in bytes.
// The misbehaviours run only inside the sandbox (wasm32); a native build, as the workspace's
// checks make, compiles them without calling them.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use reward_sdk::{PluginInfo, Reward, Rollout, RolloutError, Score};

struct LimitsGuest;

impl Reward for LimitsGuest {
    type Config = serde_json::Value;

    fn info() -> PluginInfo {
        PluginInfo {
            name: "limits-guest".into(),
            version: "0.1.0".into(),
            description: "misbehaves on request, for limit tests".into(),
            metrics: vec!["length".into()],
        }
    }

    fn score(_config: &Self::Config, rollout: &Rollout) -> Result<Score, RolloutError> {
        let text = rollout.completion.trim();
        let (cmd, arg) = text.split_once(' ').unwrap_or((text, ""));
        let n: usize = arg.trim().parse().unwrap_or(0);
        match cmd {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "stack" => Ok(Score::new(recurse(std::hint::black_box(1)) as f64)),
            "deep" => Ok(Score::new(deep(rollout.completion.len() as u64 * 1_000_000_000) as f64)),
            "panic" => panic!("the guest was asked to panic"),
            "nan" => Ok(Score::new(f64::NAN)),
            "inf" => Ok(Score::new(f64::INFINITY)),
            "big-reason" => Ok(Score::new(1.0).with_reason("x".repeat(n))),
            "many-metrics" => {
                let mut s = Score::new(1.0);
                for i in 0..n {
                    s = s.metric(&format!("m{i}"), i as f64);
                }
                Ok(s)
            }
            "meter-refill" => meter_abuse::refill(u32::MAX),
            "meter-past" => meter_abuse::refill(100),
            "meter-glue-spin" => meter_abuse::glue_spin(),
            "invalid" => Err(RolloutError::InvalidInput("the guest was asked to reject this rollout".into())),
            "judge" => judge::ask(arg).and_then(|answer| {
                let value = answer
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| RolloutError::Failed(format!("the judge answered {answer:?}, not a number")))?;
                Ok(Score::new(value).with_reason(answer))
            }),
            "judge-swallow" => Ok(judge::ask(arg).map_or(Score::new(0.0), |answer| Score::new(answer.len() as f64))),
            "embed" => {
                let (a, b) = arg.split_once('|').ok_or_else(|| RolloutError::InvalidInput("embed wants `A | B`".into()))?;
                let vectors = judge::embed(&[a.trim().to_owned(), b.trim().to_owned()])?;
                let (x, y) = (&vectors[0], &vectors[1]);
                let dot: f32 = x.iter().zip(y).map(|(p, q)| p * q).sum();
                let norm = |v: &[f32]| v.iter().map(|p| p * p).sum::<f32>().sqrt();
                Ok(Score::new(f64::from(dot / (norm(x) * norm(y)))))
            }
            "judge-many" => {
                let answered = (0..n).filter(|i| judge::ask(&format!("question {i}")).is_ok()).count();
                Ok(Score::new(answered as f64))
            }
            "work" => {
                let mut acc: u64 = 0;
                for i in 0..(n as u64) * 1000 {
                    acc = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(i));
                }
                Ok(Score::new(1.0).metric("acc_low_bit", (acc & 1) as f64))
            }
            _ => Ok(Score::new(rollout.completion.len() as f64).metric("length", rollout.completion.len() as f64)),
        }
    }
}

/// Asks the host's `judge` import, on wasm32 only (natively there is no host).
mod judge {
    use reward_sdk::RolloutError;

    /// The answer's text to one user turn, or the judge's error as a failure.
    pub fn ask(question: &str) -> Result<String, RolloutError> {
        #[cfg(target_arch = "wasm32")]
        {
            use reward_sdk::bindings::reward::plugin::judge;
            let messages = [judge::ChatMessage { role: "user".into(), content: question.into() }];
            let sampling = judge::Sampling { temperature: None, top_p: None, max_tokens: None, seed: None };
            judge::complete(&messages, sampling).map(|c| c.text).map_err(|e| RolloutError::Failed(format!("the judge failed: {e:?}")))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = question;
            Err(RolloutError::Failed("the judge needs the wasm host".into()))
        }
    }

    /// The judge's embeddings of `texts`, or its error as a failure.
    pub fn embed(texts: &[String]) -> Result<Vec<Vec<f32>>, RolloutError> {
        #[cfg(target_arch = "wasm32")]
        {
            reward_sdk::bindings::reward::plugin::judge::embed(texts).map_err(|e| RolloutError::Failed(format!("the judge failed: {e:?}")))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = texts;
            Err(RolloutError::Failed("the judge needs the wasm host".into()))
        }
    }
}

/// Misuse of the host's `meter` import, on wasm32 only (natively there is no host).
mod meter_abuse {
    use reward_sdk::{RolloutError, Score};

    #[cfg(target_arch = "wasm32")]
    use reward_sdk::bindings::reward::plugin::meter;

    /// Ends the current rollout and begins the following ones, `steps` times, then panics.
    pub fn refill(steps: u32) -> Result<Score, RolloutError> {
        #[cfg(target_arch = "wasm32")]
        {
            let mut index = reward_sdk::guest::current_index();
            for _ in 0..steps {
                meter::end(index);
                index += 1;
                meter::begin(index);
            }
            panic!("meter-past: trapping at rollout {index}");
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = steps;
            Err(RolloutError::Failed("meter abuse needs the wasm host".into()))
        }
    }

    /// Ends the current rollout, then spins outside any rollout.
    pub fn glue_spin() -> Result<Score, RolloutError> {
        #[cfg(target_arch = "wasm32")]
        {
            meter::end(reward_sdk::guest::current_index());
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        #[cfg(not(target_arch = "wasm32"))]
        Err(RolloutError::Failed("meter abuse needs the wasm host".into()))
    }
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let buf = std::hint::black_box([depth; 64]);
    recurse(depth + 1) + buf[0]
}

/// Recursion whose frame lives in wasm locals only, so the native wasm stack overflows first.
fn deep(n: u64) -> u64 {
    if n == 0 {
        return 1;
    }
    let below = deep(n - 1);
    (below ^ n).rotate_left(7).wrapping_add(n)
}

reward_sdk::export_reward!(LimitsGuest);
