//! The all-doors agreement test's shared table: the rewards config, the batches of rollouts, what
//! each rollout is expected to score under each `on_error` policy, and the one comparable form
//! every door's answer is translated into. Used by `reward-server/tests/agreement.rs` (the
//! server's doors and the offline scorer) and `rft-launch/tests/bridge_agreement.rs` (the Lambda
//! bridge's three modes) through `#[path]`, so the expectations are written once. Only std and
//! serde_json, reward-proto and tonic here: what both crates depend on.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use reward_proto::v1 as pb;
use serde_json::{Value, json};

/// The three failure policies; each reward is configured once per policy, `{base}_{policy}`.
pub const POLICIES: [&str; 3] = ["zero", "abstain", "fail"];

/// The prompt of every rollout (the OpenRLHF door sends it as `prompts[i]`, and `query[i]` is it
/// followed by the completion).
pub const PROMPT: &str = "Revenue grew from 120 to 135. Growth in percent? ";

/// Fuel for the limits guest: far more than `work 3` or a length needs, so only `loop` runs out
/// (deterministically: fuel, not the clock, ends it).
pub const GUEST_LIMITS: &str = "limits = { fuel = 50_000_000, timeout_ms = 20000 }";

/// The rewards config: the built-in `format` plugin (numeric reference check, as the
/// `numeric_answer` reward of `rewards.toml`) and the limits test guest, each under three names,
/// one per policy.
pub fn rewards_toml(format_wasm: &Path, guest_wasm: &Path) -> String {
    let mut text = String::new();
    for policy in POLICIES {
        text.push_str(&format!(
            "[rewards.fmt_{policy}]\nplugin = \"{}\"\non_error = \"{policy}\"\nconfig = {{ reference = {{ mode = \"numeric\" }} }}\n\n",
            format_wasm.display()
        ));
        text.push_str(&format!(
            "[rewards.guest_{policy}]\nplugin = \"{}\"\non_error = \"{policy}\"\n{GUEST_LIMITS}\n\n",
            guest_wasm.display()
        ));
    }
    text
}

/// What a rollout is expected to end as, whatever the door.
#[derive(Clone, Debug)]
pub enum Expect {
    /// Scored: the value and, where the table pins them, the metrics.
    Ok { score: f64, metrics: Option<Vec<(&'static str, f64)>> },
    /// Failed with this status (the proto's / JSON's name).
    Failed { status: &'static str },
}

/// One rollout of a batch.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: &'static str,
    pub completion: &'static str,
    /// The reference answer (JSON); `null` for none.
    pub reference: Value,
    /// Not a rollout at all: a Nova record with no messages (`{"id": ...}`), a gRPC rollout with
    /// no messages and no completion. OpenRLHF cannot send one (every `query` is a completion).
    pub malformed: bool,
    pub expect: Expect,
}

/// One request's worth of rollouts, for the reward `{reward}_{policy}`.
#[derive(Clone, Debug)]
pub struct Batch {
    pub name: &'static str,
    pub reward: &'static str,
    pub cases: Vec<Case>,
}

impl Batch {
    /// The reward's name under `policy`.
    pub fn reward_for(&self, policy: &str) -> String {
        format!("{}_{policy}", self.reward)
    }

    /// Whether any rollout of the batch fails (so `fail` fails the whole request).
    pub fn any_failure(&self) -> bool {
        self.cases.iter().any(|c| matches!(c.expect, Expect::Failed { .. }))
    }

    /// The batch as a Nova Lambda event: `{id, messages, reference_answer}` records, the answer
    /// last; a malformed case is `{"id": ...}` alone. Also the offline JSONL lines and the native
    /// JSON door's `rollouts` (both take the Nova record shape).
    pub fn nova_records(&self) -> Vec<Value> {
        self.cases
            .iter()
            .map(|c| {
                if c.malformed {
                    json!({ "id": c.id })
                } else {
                    json!({
                        "id": c.id,
                        "messages": [
                            {"role": "user", "content": PROMPT},
                            {"role": "assistant", "content": c.completion},
                        ],
                        "reference_answer": c.reference,
                    })
                }
            })
            .collect()
    }

    /// The cases the OpenRLHF contract can carry: all but the malformed records.
    pub fn openrlhf_cases(&self) -> Vec<&Case> {
        self.cases.iter().filter(|c| !c.malformed).collect()
    }

    /// The batch as an OpenRLHF request (see [`Batch::openrlhf_cases`]).
    pub fn openrlhf_request(&self) -> Value {
        let cases = self.openrlhf_cases();
        json!({
            "query": cases.iter().map(|c| format!("{PROMPT}{}", c.completion)).collect::<Vec<_>>(),
            "prompts": cases.iter().map(|_| PROMPT).collect::<Vec<_>>(),
            "labels": cases.iter().map(|c| c.reference.clone()).collect::<Vec<_>>(),
        })
    }

    /// The same batch without the malformed records (what the OpenRLHF door is compared on).
    pub fn without_malformed(&self) -> Batch {
        Batch { name: self.name, reward: self.reward, cases: self.cases.iter().filter(|c| !c.malformed).cloned().collect() }
    }
}

/// The low bit of the limits guest's `work n` accumulator, computed as the guest does.
fn work_low_bit(n: u64) -> f64 {
    let mut acc: u64 = 0;
    for i in 0..n * 1000 {
        acc = acc.wrapping_mul(31).wrapping_add(i);
    }
    (acc & 1) as f64
}

fn ok(score: f64) -> Expect {
    Expect::Ok { score, metrics: None }
}

fn case(id: &'static str, completion: &'static str, reference: Value, expect: Expect) -> Case {
    Case { id, completion, reference, malformed: false, expect }
}

/// A Nova record with no messages: not a rollout; it fails alone, as `INVALID_INPUT`.
fn malformed(id: &'static str) -> Case {
    Case { id, completion: "", reference: Value::Null, malformed: true, expect: Expect::Failed { status: "INVALID_INPUT" } }
}

/// The batches. Expectations, reasoned from the plugins:
/// - `format` in numeric mode with the default weights (format 0, answer 1, gated) pays the
///   answer's credit: 1 for an exact match, 0 for a wrong number; a `null` reference is the
///   plugin's `InvalidInput` ("reference is missing").
/// - the limits guest scores a plain completion by its length in bytes (metric `length`), `work
///   N` as 1 (metric `acc_low_bit`), and fails `panic` (a trap: PLUGIN_ERROR), `loop` (fuel runs
///   out: TIMEOUT), `invalid` (the guest's InvalidInput). Later rollouts of the batch still score
///   after a trap.
pub fn batches() -> Vec<Batch> {
    let hello = || case("hello", "hello", Value::Null, Expect::Ok { score: 5.0, metrics: Some(vec![("length", 5.0)]) });
    let work = || case("work", "work 3", Value::Null, Expect::Ok { score: 1.0, metrics: Some(vec![("acc_low_bit", work_low_bit(3))]) });
    vec![
        Batch {
            name: "fmt-good",
            reward: "fmt",
            cases: vec![
                case("right", "<answer>12.5</answer>", json!(12.5), ok(1.0)),
                case("wrong", "<answer>40</answer>", json!(12.5), ok(0.0)),
            ],
        },
        Batch {
            name: "fmt-no-reference",
            reward: "fmt",
            cases: vec![
                case("right", "<answer>12.5</answer>", json!(12.5), ok(1.0)),
                case("no-ref", "<answer>12.5</answer>", Value::Null, Expect::Failed { status: "INVALID_INPUT" }),
                case("wrong", "<answer>40</answer>", json!(12.5), ok(0.0)),
            ],
        },
        Batch {
            name: "guest-failures",
            reward: "guest",
            cases: vec![
                hello(),
                case("panic", "panic", Value::Null, Expect::Failed { status: "PLUGIN_ERROR" }),
                case("loop", "loop", Value::Null, Expect::Failed { status: "TIMEOUT" }),
                work(),
                case("invalid", "invalid", Value::Null, Expect::Failed { status: "INVALID_INPUT" }),
                malformed("broken"),
            ],
        },
        Batch { name: "guest-malformed-alone", reward: "guest", cases: vec![hello(), malformed("broken"), work()] },
        Batch { name: "guest-good", reward: "guest", cases: vec![hello(), work()] },
    ]
}

/// One rollout's answer, as every door can be read: what a door's contract cannot carry is `None`
/// (or, for metric kinds, absent), and is then not compared.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The echoed id (OpenRLHF answers by position: `None`).
    pub id: Option<String>,
    /// The score; `None` is "no score" (abstain / fail on the native doors).
    pub score: Option<f64>,
    /// The status name (`None` where the contract has none: Nova, OpenRLHF).
    pub status: Option<String>,
    /// Whether the rollout failed: a status other than OK, or the `reward_error` marker.
    pub failed: bool,
    /// Metrics by name, without the `reward_error` marker.
    pub metrics: BTreeMap<String, f64>,
    /// Metric kinds (`Reward` / `Metric`) where the contract carries them (gRPC, Nova).
    pub kinds: Option<BTreeMap<String, String>>,
}

/// A door's answer to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// One answer per rollout, in request order.
    Scored(Vec<Answer>),
    /// The whole request failed; `how` is the door's way of saying it (`HTTP 422`, `gRPC
    /// Aborted`, `exit 1`, ...), `detail` its text.
    Failed { how: String, detail: String },
}

impl Outcome {
    pub fn answers(&self) -> &[Answer] {
        match self {
            Outcome::Scored(a) => a,
            Outcome::Failed { how, detail } => panic!("expected scores, the request failed: {how}: {detail}"),
        }
    }
}

/// The marker the Nova and OpenRLHF contracts use for a rollout that could not be scored.
pub const ERROR_METRIC: &str = "reward_error";

/// Reads a Nova Lambda answer (the server's Lambda door, the bridge). `reward_error` = 1 is the
/// failure flag; the Nova contract has no status and no "no score".
pub fn read_nova(answer: &Value) -> Outcome {
    let items = answer.as_array().unwrap_or_else(|| panic!("a Nova answer is an array: {answer}"));
    Outcome::Scored(
        items
            .iter()
            .map(|item| {
                let mut metrics = BTreeMap::new();
                let mut kinds = BTreeMap::new();
                let mut failed = false;
                for m in item["metrics_list"].as_array().unwrap_or_else(|| panic!("metrics_list: {item}")) {
                    let name = m["name"].as_str().unwrap().to_owned();
                    let value = m["value"].as_f64().unwrap();
                    if name == ERROR_METRIC {
                        assert_eq!((value, m["type"].as_str()), (1.0, Some("Metric")), "the error marker is 1, a Metric: {item}");
                        failed = true;
                        continue;
                    }
                    kinds.insert(name.clone(), m["type"].as_str().unwrap().to_owned());
                    metrics.insert(name, value);
                }
                Answer {
                    id: Some(item["id"].as_str().unwrap_or_else(|| panic!("id: {item}")).to_owned()),
                    score: Some(item["aggregate_reward_score"].as_f64().unwrap_or_else(|| panic!("score: {item}"))),
                    status: None,
                    failed,
                    metrics,
                    kinds: Some(kinds),
                }
            })
            .collect(),
    )
}

/// Reads one native JSON result (the native HTTP door, an offline JSONL line).
pub fn read_native(r: &Value) -> Answer {
    let status = r["status"].as_str().unwrap_or_else(|| panic!("status: {r}")).to_owned();
    Answer {
        id: Some(r["id"].as_str().unwrap_or_else(|| panic!("id: {r}")).to_owned()),
        score: match &r["score"] {
            Value::Null => None,
            v => Some(v.as_f64().unwrap_or_else(|| panic!("score: {r}"))),
        },
        failed: status != "OK",
        status: Some(status),
        metrics: r["metrics"]
            .as_object()
            .unwrap_or_else(|| panic!("metrics: {r}"))
            .iter()
            .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
            .collect(),
        kinds: None,
    }
}

/// Which door's view of the full answer to compare against: what its contract can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// gRPC: everything.
    Full,
    /// Native JSON and offline JSONL: no metric kinds (metrics are a name -> value map).
    NoKinds,
    /// Nova Lambda (server door, bridge): no status, no "no score" (a failed rollout scores its
    /// policy's value, 0 for want of a null), the failure is the `reward_error` metric.
    Nova,
    /// OpenRLHF: no ids, no status, no kinds, no "no score"; a metric absent on a rollout is 0 in
    /// its `extra_logs` column; the failure is the `reward_error` column.
    OpenRlhf,
    /// One sample per request, no id (slime with `?detail=true`, NeMo Gym `/verify`): no status,
    /// no kinds, no "no score"; the failure is `reward_error` (slime) or `mask_sample` (NeMo Gym).
    Sample,
}

/// The full answer as the door's contract can carry it.
pub fn project(full: &Outcome, view: View) -> Outcome {
    let answers = match full {
        Outcome::Failed { .. } => return full.clone(),
        Outcome::Scored(a) => a,
    };
    let names: Vec<String> = {
        let mut n: Vec<String> = answers.iter().flat_map(|a| a.metrics.keys().cloned()).collect();
        n.sort();
        n.dedup();
        n
    };
    Outcome::Scored(
        answers
            .iter()
            .map(|a| match view {
                View::Full => a.clone(),
                View::NoKinds => Answer { kinds: None, ..a.clone() },
                View::Nova => Answer { score: Some(a.score.unwrap_or(0.0)), status: None, ..a.clone() },
                View::Sample => Answer { id: None, score: Some(a.score.unwrap_or(0.0)), status: None, kinds: None, ..a.clone() },
                View::OpenRlhf => Answer {
                    id: None,
                    score: Some(a.score.unwrap_or(0.0)),
                    status: None,
                    failed: a.failed,
                    metrics: names.iter().map(|n| (n.clone(), a.metrics.get(n).copied().unwrap_or(0.0))).collect(),
                    kinds: None,
                },
            })
            .collect(),
    )
}

/// Scores agree to within JSON's round trip (the bridge reads the server's answer and writes it
/// again; serde_json's default float parsing may be one ulp off).
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

/// Asserts `got` (a door's answer, read) agrees with `want` (the reference door's answer,
/// projected to the door's view). A failed request agrees with a failed request if the door
/// said so its own way, `how`.
pub fn assert_agrees(what: &str, got: &Outcome, want: &Outcome, how: &str) {
    match (got, want) {
        (Outcome::Failed { how: got_how, detail }, Outcome::Failed { .. }) => {
            assert_eq!(got_how, how, "{what}: the request failed, but not as this door says it ({detail})");
        }
        (Outcome::Scored(g), Outcome::Scored(w)) => {
            assert_eq!(g.len(), w.len(), "{what}: {} answers for {} rollouts\n got: {g:?}\nwant: {w:?}", g.len(), w.len());
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                let same = g.id == w.id
                    && g.status == w.status
                    && g.failed == w.failed
                    && g.kinds == w.kinds
                    && match (g.score, w.score) {
                        (Some(a), Some(b)) => close(a, b),
                        (a, b) => a == b,
                    }
                    && g.metrics.len() == w.metrics.len()
                    && g.metrics.iter().zip(&w.metrics).all(|((gk, gv), (wk, wv))| gk == wk && close(*gv, *wv));
                assert!(same, "{what}: rollout {i} differs\n got: {g:?}\nwant: {w:?}");
            }
        }
        _ => panic!("{what}: disagree on whether the request failed\n got: {got:?}\nwant: {want:?}"),
    }
}

/// Asserts the reference door's full answer is what the table expects under `policy`: under
/// `fail` a batch with a failing rollout fails as a whole; otherwise each rollout has its
/// status, a failed one scores 0 (`zero`) or nothing (`abstain`), and pinned metrics match.
pub fn assert_expected(what: &str, batch: &Batch, policy: &str, full: &Outcome) {
    if policy == "fail" && batch.any_failure() {
        assert!(matches!(full, Outcome::Failed { .. }), "{what}: under `fail` a failing rollout fails the request, got {full:?}");
        return;
    }
    let answers = full.answers();
    assert_eq!(answers.len(), batch.cases.len(), "{what}: {answers:?}");
    for (c, a) in batch.cases.iter().zip(answers) {
        assert_eq!(a.id.as_deref(), Some(c.id), "{what}: ids in request order");
        match &c.expect {
            Expect::Ok { score, metrics } => {
                assert_eq!((a.status.as_deref(), a.score), (Some("OK"), Some(*score)), "{what}: {} scores: {a:?}", c.id);
                if let Some(metrics) = metrics {
                    let want: BTreeMap<String, f64> = metrics.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
                    assert_eq!(a.metrics, want, "{what}: {} metrics", c.id);
                }
            }
            Expect::Failed { status } => {
                let score = if policy == "zero" { Some(0.0) } else { None };
                assert_eq!((a.status.as_deref(), a.score), (Some(*status), score), "{what}: {} fails under `{policy}`: {a:?}", c.id);
                assert!(a.metrics.is_empty(), "{what}: a failed rollout reports no metrics: {a:?}");
            }
        }
    }
}

/// A gRPC client of the native API (the reference door).
pub type Client = pb::reward_service_client::RewardServiceClient<tonic::transport::Channel>;

/// The batch as native rollouts: the answer the last message, the reference as JSON text; a
/// malformed case has no messages and no completion (not a rollout).
pub fn proto_rollouts(batch: &Batch) -> Vec<pb::Rollout> {
    batch
        .cases
        .iter()
        .map(|c| pb::Rollout {
            id: c.id.into(),
            messages: if c.malformed {
                vec![]
            } else {
                vec![
                    pb::Message { role: "user".into(), content: PROMPT.into() },
                    pb::Message { role: "assistant".into(), content: c.completion.into() },
                ]
            },
            completion: String::new(),
            reference_json: c.reference.to_string(),
            ..Default::default()
        })
        .collect()
}

pub fn from_proto(r: &pb::ScoredRollout) -> Answer {
    let status = r.status().as_str_name().to_owned();
    let kind = |m: &pb::Metric| match m.kind() {
        pb::MetricKind::Reward => "Reward".to_owned(),
        pb::MetricKind::Metric => "Metric".to_owned(),
        pb::MetricKind::Unspecified => panic!("a metric without a kind: {r:?}"),
    };
    Answer {
        id: Some(r.id.clone()),
        score: r.score,
        failed: status != "OK",
        status: Some(status),
        metrics: r.metrics.iter().map(|m| (m.name.clone(), m.value)).collect(),
        kinds: Some(r.metrics.iter().map(|m| (m.name.clone(), kind(m))).collect()),
    }
}

pub fn grpc_failed(status: &tonic::Status) -> Outcome {
    Outcome::Failed { how: format!("gRPC {:?}", status.code()), detail: status.message().to_owned() }
}

pub async fn grpc_score(client: &mut Client, batch: &Batch, reward: &str) -> Outcome {
    match client.score(pb::ScoreRequest { reward: reward.into(), rollouts: proto_rollouts(batch) }).await {
        Ok(r) => Outcome::Scored(r.into_inner().results.iter().map(from_proto).collect()),
        Err(status) => grpc_failed(&status),
    }
}
