//! Fuzz targets: one function per decoder that takes bytes from outside the process, each calling
//! the real decoder the way its door does and checking what the door promises (no panic, the
//! documented caps, answers that keep their shape). `tests/fuzz.rs` drives them on stable Rust
//! with seeded mutations of a seed corpus; the cargo-fuzz crate in `fuzz/` drives them with
//! libFuzzer.
//!
//! | target | outside bytes | door |
//! | --- | --- | --- |
//! | [`lambda`] | a Nova reward-Lambda event | UTF-8 check, [`nova::count_request`], [`nova::parse_request`] |
//! | [`openrlhf`] | an OpenRLHF `get_reward` body | UTF-8 check, `openrlhf::count_request`, the request, `openrlhf::parse_request` |
//! | [`grpc`] | a `reward.v1.ScoreRequest` message | `prost` decoding, the gRPC adapter's conversion to items |
//! | [`http`] | an HTTP request body and timeout header | the HTTP router itself (all three scoring routes, native included), in process |
//! | [`jsonl`] | an offline input file, and a partial output to resume | [`offline::run`] on a file, with and without `--resume` |
//! | [`rewards_config`] | a rewards config (TOML) | [`Rewards::from_toml`], then one rollout through every reward it loads |
//! | [`formula`] | a composite's formula | [`Formula::parse`], then `eval` on the parsed variables |
//! | [`guest_answer`] | what a plugin answers (its memory) | lifting the answer from the guest, then the host's check of it |
//! | [`timeout_header`] | a `grpc-timeout` / `x-timeout-ms` header | the header value as both doors read it |
//!
//! The targets that need a plugin use the echo guest ([`ECHO_GUEST_WAT`]): a component written
//! in the text format whose answer is spelled out by the rollout's completion, so a fuzzer
//! controls the exact bytes the host lifts out of the guest's memory. A [`Fixture`] holds it
//! loaded, with a scratch directory, a rewards config over it and an in-process server state.
//!
//! Not a stable API: it exists for the fuzz harnesses.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prost::Message as _;
use reward_proto::v1 as pb;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::Rewards;
use crate::engine::formula::{Formula, MAX_FORMULA_BYTES, MAX_FORMULA_DEPTH};
use crate::engine::{
    ANSWER_ROLES, HostBuilder, Limits, MAX_GUEST_ERROR_BYTES, MAX_METRIC_NAME_BYTES, Message, Metric, MetricKind, Plugin, PluginHost,
    PluginScore, Reward, Rollout, Status, bounded_guest_text,
};
use crate::input;
use crate::offline::{self, RunError, ScoreJob};
use crate::server::{self, AppState, DEFAULT_MAX_ROLLOUTS_PER_REQUEST, Item, ScorerOptions, ServeOptions, nova};

/// A fuzz target: the fixture and one input.
pub type Target = fn(&Fixture, &[u8]);

/// Every target, by the name its corpus directory and cargo-fuzz binary carry.
pub const TARGETS: &[(&str, Target)] = &[
    ("lambda", lambda),
    ("openrlhf", openrlhf),
    ("grpc", grpc),
    ("http", http),
    ("jsonl", jsonl),
    ("rewards_config", rewards_config),
    ("formula", formula),
    ("guest_answer", guest_answer),
    ("timeout_header", timeout_header),
];

/// The reward the fixture's server and offline runs score with.
pub const ECHO_REWARD: &str = "echo";
/// Most rollouts the fixture's server takes in one request (`--max-rollouts-per-request`): 64.
pub const FIXTURE_MAX_ROLLOUTS: usize = 64;
/// The fixture's server's body cap (`--max-body-bytes`): 256 KiB.
pub const FIXTURE_MAX_BODY_BYTES: usize = 256 << 10;
/// Where the echo guest lays out an answer it is given: guest address 1,024.
pub const ECHO_ANSWER_BASE: u32 = 1024;
/// What a completion starts with to make the echo guest answer the bytes that follow (in hex).
pub const ECHO_ANSWER_PREFIX: &str = "ANS:";

/// The echo guest, a reward plugin in the component text format (`wat::parse_str` turns it into
/// the component [`Fixture::new`] takes). It imports nothing. `info` names it `fuzz-echo` 0.1.0
/// with no declared metrics; `check-config` accepts every config. `score-batch` looks at the
/// first rollout's completion: `ANS:` followed by hex is decoded to guest address 1,024 and
/// returned as the call's result as it stands (its first 8 bytes are the result list's address
/// and length, the rest what they point to), so the host lifts exactly those bytes; any other
/// completion scores every rollout its completion's length in bytes.
pub const ECHO_GUEST_WAT: &str = r#"
(component
  (core module $guest
    ;; 4 MiB to start: [0, 1 KiB) the fixed data, [1 KiB, 1 MiB) the decoded answer, then the heap.
    (memory (export "memory") 64)
    (global $heap (mut i32) (i32.const 0x100000))
    ;; info: name "fuzz-echo", version "0.1.0", description "...", no metrics.
    (data (i32.const 64) "fuzz-echo")
    (data (i32.const 80) "0.1.0")
    (data (i32.const 96) "echoes the answer its completion spells out, for the fuzz targets")
    (data (i32.const 16)
      "\40\00\00\00\09\00\00\00"   ;; name: ptr 64, len 9
      "\50\00\00\00\05\00\00\00"   ;; version: ptr 80, len 5
      "\60\00\00\00\41\00\00\00"   ;; description: ptr 96, len 65
      "\00\00\00\00\00\00\00\00")  ;; metrics: ptr 0, len 0
    (func $realloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $p i32) (local $end i32) (local $have i32)
      (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $p) (local.get $size)))
      (if (i32.lt_u (local.get $end) (local.get $p)) (then unreachable))
      (local.set $have (i32.shl (memory.size) (i32.const 16)))
      (if (i32.gt_u (local.get $end) (local.get $have))
        (then
          (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 0xffff)) (i32.const 16)))
                      (i32.const -1))
            (then unreachable))))
      (global.set $heap (local.get $end))
      (if (local.get $old) (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
      (local.get $p))
    (func (export "reward:plugin/reward@0.1.0#info") (result i32) (i32.const 16))
    ;; result<_, string>: ok (discriminant 0 at 48).
    (func (export "reward:plugin/reward@0.1.0#check-config") (param i32 i32) (result i32) (i32.const 48))
    (func $nibble (param $c i32) (result i32)
      (if (i32.lt_u (i32.sub (local.get $c) (i32.const 48)) (i32.const 10))
        (then (return (i32.sub (local.get $c) (i32.const 48)))))
      (if (i32.lt_u (i32.sub (local.get $c) (i32.const 97)) (i32.const 6))
        (then (return (i32.sub (local.get $c) (i32.const 87)))))
      (i32.const 0))
    (func (export "reward:plugin/reward@0.1.0#score-batch") (param $cfg i32) (param $cfg_len i32) (param $rs i32) (param $n i32) (result i32)
      (local $c i32) (local $len i32) (local $i i32) (local $out i32) (local $entry i32)
      (if (local.get $n)
        (then
          (local.set $c (i32.load offset=16 (local.get $rs)))
          (local.set $len (i32.load offset=20 (local.get $rs)))
          ;; "ANS:" then hex: the answer, laid out from 1 KiB (its first 8 bytes are the list's ptr, len).
          (if (i32.ge_u (local.get $len) (i32.const 4)) (then (if (i32.eq (i32.load (local.get $c)) (i32.const 0x3a534e41))
            (then
              (local.set $len (i32.shr_u (i32.sub (local.get $len) (i32.const 4)) (i32.const 1)))
              (if (i32.gt_u (local.get $len) (i32.const 0xffc00)) (then (local.set $len (i32.const 0xffc00))))
              (local.set $c (i32.add (local.get $c) (i32.const 4)))
              (block $done
                (loop $hex
                  (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
                  (i32.store8 offset=1024 (local.get $i)
                    (i32.or (i32.shl (call $nibble (i32.load8_u (local.get $c))) (i32.const 4))
                            (call $nibble (i32.load8_u offset=1 (local.get $c)))))
                  (local.set $c (i32.add (local.get $c) (i32.const 2)))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br $hex)))
              (return (i32.const 1024))))))))
      ;; Otherwise every rollout scores its completion's length in bytes: ok(score { value, [], none }).
      (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.add (i32.const 8) (i32.mul (local.get $n) (i32.const 40)))))
      (i32.store (local.get $out) (i32.add (local.get $out) (i32.const 8)))
      (i32.store offset=4 (local.get $out) (local.get $n))
      (local.set $i (i32.const 0))
      (block $done
        (loop $each
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $entry (i32.add (i32.add (local.get $out) (i32.const 8)) (i32.mul (local.get $i) (i32.const 40))))
          (i32.store8 (local.get $entry) (i32.const 0))
          (f64.store offset=8 (local.get $entry)
            (f64.convert_i32_u (i32.load offset=20 (i32.add (local.get $rs) (i32.mul (local.get $i) (i32.const 40))))))
          (i64.store offset=16 (local.get $entry) (i64.const 0))
          (i32.store8 offset=24 (local.get $entry) (i32.const 0))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $each)))
      (local.get $out))
    (func (export "cabi_post_reward:plugin/reward@0.1.0#score-batch") (param i32)
      (global.set $heap (i32.const 0x100000)))
  )

  (core instance $g (instantiate $guest))
  (alias core export $g "memory" (core memory $mem))
  (alias core export $g "cabi_realloc" (core func $realloc))
  (alias core export $g "cabi_post_reward:plugin/reward@0.1.0#score-batch" (core func $post))
  (type $message (record (field "role" string) (field "content" string)))
  (type $rollout (record (field "id" string) (field "messages" (list $message)) (field "completion" string)
                         (field "reference" string) (field "metadata" string)))
  (type $metric-kind (enum "reward" "metric"))
  (type $metric (record (field "name" string) (field "value" f64) (field "kind" $metric-kind)))
  (type $score (record (field "value" f64) (field "metrics" (list $metric)) (field "reason" (option string))))
  (type $rollout-error (variant (case "invalid-input" string) (case "failed" string)))
  (type $plugin-info (record (field "name" string) (field "version" string) (field "description" string)
                             (field "metrics" (list string))))
  (func $info (result $plugin-info)
    (canon lift (core func $g "reward:plugin/reward@0.1.0#info") (memory $mem) string-encoding=utf8))
  (func $check-config (param "config" string) (result (result (error string)))
    (canon lift (core func $g "reward:plugin/reward@0.1.0#check-config") (memory $mem) (realloc $realloc) string-encoding=utf8))
  (func $score-batch (param "config" string) (param "rollouts" (list $rollout)) (result (list (result $score (error $rollout-error))))
    (canon lift (core func $g "reward:plugin/reward@0.1.0#score-batch") (memory $mem) (realloc $realloc) string-encoding=utf8
      (post-return $post)))
  ;; The interface as an instance whose types are exported by name, as wit-component lays it out.
  (component $shim
    (type $message' (record (field "role" string) (field "content" string)))
    (import "import-type-message" (type $message (eq $message')))
    (type $rollout' (record (field "id" string) (field "messages" (list $message)) (field "completion" string)
                            (field "reference" string) (field "metadata" string)))
    (import "import-type-rollout" (type $rollout (eq $rollout')))
    (type $metric-kind' (enum "reward" "metric"))
    (import "import-type-metric-kind" (type $metric-kind (eq $metric-kind')))
    (type $metric' (record (field "name" string) (field "value" f64) (field "kind" $metric-kind)))
    (import "import-type-metric" (type $metric (eq $metric')))
    (type $score' (record (field "value" f64) (field "metrics" (list $metric)) (field "reason" (option string))))
    (import "import-type-score" (type $score (eq $score')))
    (type $rollout-error' (variant (case "invalid-input" string) (case "failed" string)))
    (import "import-type-rollout-error" (type $rollout-error (eq $rollout-error')))
    (type $plugin-info' (record (field "name" string) (field "version" string) (field "description" string)
                                (field "metrics" (list string))))
    (import "import-type-plugin-info" (type $plugin-info (eq $plugin-info')))
    (import "import-func-info" (func $info (result $plugin-info)))
    (import "import-func-check-config" (func $check-config (param "config" string) (result (result (error string)))))
    (import "import-func-score-batch" (func $score-batch (param "config" string) (param "rollouts" (list $rollout))
                                        (result (list (result $score (error $rollout-error))))))
    (type $x-message (record (field "role" string) (field "content" string)))
    (export $e-message "message" (type $x-message))
    (type $x-rollout (record (field "id" string) (field "messages" (list $e-message)) (field "completion" string)
                             (field "reference" string) (field "metadata" string)))
    (export $e-rollout "rollout" (type $x-rollout))
    (type $x-metric-kind (enum "reward" "metric"))
    (export $e-metric-kind "metric-kind" (type $x-metric-kind))
    (type $x-metric (record (field "name" string) (field "value" f64) (field "kind" $e-metric-kind)))
    (export $e-metric "metric" (type $x-metric))
    (type $x-score (record (field "value" f64) (field "metrics" (list $e-metric)) (field "reason" (option string))))
    (export $e-score "score" (type $x-score))
    (type $x-rollout-error (variant (case "invalid-input" string) (case "failed" string)))
    (export $e-rollout-error "rollout-error" (type $x-rollout-error))
    (type $x-plugin-info (record (field "name" string) (field "version" string) (field "description" string)
                                 (field "metrics" (list string))))
    (export $e-plugin-info "plugin-info" (type $x-plugin-info))
    (export "info" (func $info) (func (result $e-plugin-info)))
    (export "check-config" (func $check-config) (func (param "config" string) (result (result (error string)))))
    (export "score-batch" (func $score-batch)
      (func (param "config" string) (param "rollouts" (list $e-rollout)) (result (list (result $e-score (error $e-rollout-error))))))
  )
  (instance $reward (instantiate $shim
    (with "import-func-info" (func $info))
    (with "import-func-check-config" (func $check-config))
    (with "import-func-score-batch" (func $score-batch))
    (with "import-type-message" (type $message))
    (with "import-type-rollout" (type $rollout))
    (with "import-type-metric-kind" (type $metric-kind))
    (with "import-type-metric" (type $metric))
    (with "import-type-score" (type $score))
    (with "import-type-rollout-error" (type $rollout-error))
    (with "import-type-plugin-info" (type $plugin-info))))
  (export "reward:plugin/reward@0.1.0" (instance $reward))
)
"#;

/// What the targets that need a plugin share: the echo guest loaded, a scratch directory with a
/// rewards config over it, and an in-process server on that config (router and runtime).
///
/// The scratch directory holds `echo.wasm` (also as `target/plugins/echo.wasm`, where a bare
/// `plugin = "echo"` resolves), an empty `fixtures/` directory, `rewards.toml` with the one
/// reward [`ECHO_REWARD`], and the compiled-artifact cache. It is removed when the fixture drops.
pub struct Fixture {
    dir: PathBuf,
    host: PluginHost,
    plugin: Arc<Plugin>,
    echo: Arc<Reward>,
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    /// Keeps the scorer's workers alive for the router.
    _state: Arc<AppState>,
}

impl Fixture {
    /// Builds the fixture in a new directory under the system's temporary directory. `echo_guest`
    /// is the echo guest's component bytes (`wat::parse_str(ECHO_GUEST_WAT)`).
    pub fn new(echo_guest: &[u8]) -> anyhow::Result<Fixture> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!("reward-fuzz-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("target/plugins"))?;
        std::fs::create_dir_all(dir.join("fixtures"))?;
        std::fs::write(dir.join("echo.wasm"), echo_guest)?;
        std::fs::write(dir.join("target/plugins/echo.wasm"), echo_guest)?;
        let config = dir.join("rewards.toml");
        std::fs::write(&config, format!("[rewards.{ECHO_REWARD}]\nplugin = \"echo.wasm\"\n"))?;
        let host = HostBuilder::new().max_instances(64).cache_dir(Some(dir.join("cache"))).build()?;
        let plugin = host.load_bytes("echo.wasm", echo_guest)?;
        let rewards = Rewards::load(&host, &config)?;
        let echo = rewards.get(ECHO_REWARD)?.clone();
        let options = ServeOptions {
            grpc_addr: ([127, 0, 0, 1], 0).into(),
            http_addr: ([127, 0, 0, 1], 0).into(),
            scorer: ScorerOptions { workers: 2, max_rollouts_per_request: FIXTURE_MAX_ROLLOUTS, ..ScorerOptions::default() },
            max_body_bytes: FIXTURE_MAX_BODY_BYTES,
            max_inflight_body_bytes: 4 * FIXTURE_MAX_BODY_BYTES,
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(1),
            stream_send_timeout: Duration::from_secs(1),
            ..ServeOptions::new(config)
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let state = runtime.block_on(async { AppState::from_rewards(host.clone(), rewards, options) })?;
        let router = server::http::router(state.clone());
        Ok(Fixture { dir, host, plugin, echo, runtime, router, _state: state })
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plugin host (its artifact cache is in the scratch directory).
    pub fn host(&self) -> &PluginHost {
        &self.host
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Checks what every door promises of a rollout it built: the answer last (an answer role), and
/// reference and metadata as JSON text.
fn check_rollout(r: &Rollout) {
    let last = r.messages.last().expect("a rollout has messages");
    assert!(ANSWER_ROLES.contains(&last.role.as_str()), "the last message has role {:?}", last.role);
    assert_eq!(r.completion(), last.content);
    serde_json::from_str::<Value>(&r.reference).unwrap_or_else(|e| panic!("reference {:?} is not JSON: {e}", r.reference));
    serde_json::from_str::<Value>(&r.metadata).unwrap_or_else(|e| panic!("metadata {:?} is not JSON: {e}", r.metadata));
}

/// Checks a request item: a rollout as [`check_rollout`] says, or an `INVALID_INPUT` refusal with
/// a message that starts with `label`.
fn check_item(item: &Item, label: &str) {
    match item {
        Item::Rollout(r) => check_rollout(r),
        Item::Rejected { failure, .. } => {
            assert_eq!(failure.status, Status::InvalidInput, "{}", failure.message);
            assert!(failure.message.starts_with(label), "{:?} does not start with {label:?}", failure.message);
        }
    }
}

/// The Nova reward-Lambda door: the body must be UTF-8, is counted ([`nova::count_request`]) and
/// refused past the door's cap before it is read, then read ([`nova::parse_request`]).
///
/// Checks: one item per counted record, in order, each a rollout or an `item[i]` refusal; the
/// one-pass reader of an array and the record-by-record reader agree; for every record the
/// direct reader ([`input::parse_record`]) and the `Value` reader ([`input::to_rollout`]) agree.
pub fn lambda(_: &Fixture, data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else { return };
    let Ok(count) = nova::count_request(body) else { return };
    if count > DEFAULT_MAX_ROLLOUTS_PER_REQUEST {
        return;
    }
    let Ok(items) = nova::parse_request(body) else { return };
    let array = body.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('[');
    assert_eq!(items.len(), if array { count } else { 1 }, "one item per record");
    for (i, item) in items.iter().enumerate() {
        check_item(item, &format!("item[{i}]: "));
    }
    let records: Vec<&RawValue> = if array {
        serde_json::from_str(body).expect("a body parse_request read is an array")
    } else {
        vec![serde_json::from_str(body).expect("a body parse_request read is JSON")]
    };
    for (i, record) in records.iter().enumerate() {
        let fallback = format!("item-{i}");
        let direct = input::parse_record(record.get(), &fallback);
        // A raw value is only skipped over, so it may hold what the `Value` reader refuses (a lone
        // surrogate escape). The direct reader must refuse it too, as not JSON
        // (`r16_a_lone_surrogate_in_a_message_key_the_direct_reader_skips`).
        let Ok(value) = serde_json::from_str::<Value>(record.get()) else {
            match &direct {
                Err(refused) => assert!(refused.id.is_none() && refused.error.0.starts_with("not valid JSON"), "{refused:?}"),
                Ok(r) => panic!("the direct reader read {r:?} from a record that is not JSON: {}", record.get()),
            }
            continue;
        };
        let id = input::record_id(&value);
        let by_value = input::to_rollout(value, &fallback).map_err(|error| input::Rejection { id, error });
        assert_eq!(direct, by_value, "the two readers disagree on {}", record.get());
    }
    if array && let Some(rollouts) = input::parse_records(body, "item") {
        let one_by_one = Item::from_records(records, "item", "item");
        assert_eq!(rollouts.len(), one_by_one.len());
        for (fast, slow) in rollouts.iter().zip(&one_by_one) {
            assert!(matches!(slow, Item::Rollout(r) if r == fast), "one pass read {fast:?}, record by record {slow:?}");
        }
    }
}

/// The OpenRLHF door: UTF-8, `openrlhf::count_request` and the cap, then the request and
/// `openrlhf::parse_request`. Checks one rollout per query, called `query-{i}`, the completion
/// the query after its prompt when it starts with it.
pub fn openrlhf(_: &Fixture, data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else { return };
    let Ok(count) = server::openrlhf::count_request(body) else { return };
    if count > DEFAULT_MAX_ROLLOUTS_PER_REQUEST {
        return;
    }
    // The door reads the body with `error::from_json`, serde_json's reader under another error.
    let Ok(request) = serde_json::from_str::<server::openrlhf::Request>(body) else { return };
    // What the check needs of the request (its other keys are skipped, not read: they may hold
    // what a reader refuses, a lone surrogate escape).
    #[derive(serde::Deserialize)]
    struct Texts {
        query: Vec<String>,
        // As the door's request has it: a request written as a JSON list is read by position.
        #[serde(default)]
        prompts: Option<Vec<String>>,
    }
    let texts: Texts = serde_json::from_str(body).expect("a request that parsed has its texts");
    let Ok(items) = server::openrlhf::parse_request(request) else { return };
    assert_eq!(items.len(), count, "one item per query");
    for (i, item) in items.iter().enumerate() {
        let Item::Rollout(r) = item else { panic!("query {i} was refused: {item:?}") };
        check_rollout(r);
        assert_eq!(r.id, format!("query-{i}"));
        let query = &texts.query[i];
        match texts.prompts.as_ref().map(|p| &p[i]) {
            Some(prompt) => assert_eq!(r.completion(), query.strip_prefix(prompt.as_str()).unwrap_or(query)),
            None => assert_eq!(r.completion(), query),
        }
    }
}

/// The gRPC door: the wire count of rollouts (`server::grpc_count`), a `ScoreRequest` decoded by
/// prost (as tonic does), then each rollout converted by the adapter. Checks that the wire count
/// of every message prost decodes is its number of rollouts, that the message re-encodes to
/// itself, and every item: a rollout whose answer is the completion (when one was sent), or a
/// `rollouts[i]` refusal.
pub fn grpc(_: &Fixture, data: &[u8]) {
    // The wire count the server refuses a message by, before prost decodes it: it never panics,
    // and it counts every message prost decodes exactly (or a flood could hide from it).
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(data);
    let counted = server::grpc_count::count_rollouts(usize::MAX, &frame);
    let Ok(request) = pb::ScoreRequest::decode(data) else { return };
    assert_eq!(counted.ok(), Some(request.rollouts.len()), "the wire count of a message prost decodes");
    let again = pb::ScoreRequest::decode(request.encode_to_vec().as_slice()).expect("a re-encoded request decodes");
    assert_eq!(again, request, "a request survives re-encoding");
    for (i, rollout) in request.rollouts.into_iter().enumerate() {
        let completion = rollout.completion.clone();
        let item = server::grpc::to_item(i, rollout);
        check_item(&item, &format!("rollouts[{i}]: "));
        if let Item::Rollout(r) = &item
            && !completion.is_empty()
        {
            assert_eq!(r.completion(), completion, "the answer is the completion");
        }
    }
}

/// The HTTP door, whole: the router, in process, over the echo reward. `data[0]` picks the route
/// (native `/v1/score`, the Lambda or OpenRLHF route of [`ECHO_REWARD`], the Lambda route of an
/// unknown reward), `data[1]` a timeout header (`x-timeout-ms`, `grpc-timeout`, none) and its
/// length, taken from the bytes that follow; the rest is the body.
///
/// Checks: never a 5xx but a 504 for a deadline the caller set; every answer is JSON, an error `{error, kind}` or, on 200, one result per
/// record sent, at most [`FIXTURE_MAX_ROLLOUTS`].
pub fn http(fx: &Fixture, data: &[u8]) {
    let (route, header, rest) = match data {
        [r, h, rest @ ..] => (*r % 4, *h, rest),
        _ => (0, 0, data),
    };
    let header_len = usize::from(header >> 2) % 12;
    let (value, body) = rest.split_at(header_len.min(rest.len()));
    let path = match route {
        0 => "/v1/score".to_owned(),
        1 => format!("/v1/rewards/{ECHO_REWARD}/lambda"),
        2 => format!("/v1/rewards/{ECHO_REWARD}/get_reward"),
        _ => "/v1/rewards/nosuch/lambda".to_owned(),
    };
    let mut request = axum::http::Request::post(&path).header(axum::http::header::CONTENT_LENGTH, body.len());
    match header & 3 {
        1 => request = request.header("x-timeout-ms", value),
        2 => request = request.header("grpc-timeout", value),
        _ => {}
    }
    // A header value the client library itself refuses (control characters) never reaches a door.
    let Ok(request) = request.body(axum::body::Body::from(body.to_vec())) else { return };
    let (status, answer) = fx.runtime.block_on(async {
        let response = tower::ServiceExt::oneshot(fx.router.clone(), request).await.expect("the router is infallible");
        let status = response.status();
        (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("the answer is readable"))
    });
    let answer: Value = serde_json::from_slice(&answer)
        .unwrap_or_else(|e| panic!("{path} answered {status} with a body that is not JSON ({e}): {}", String::from_utf8_lossy(&answer)));
    // A deadline the caller set can pass before the work is done (`grpc-timeout: 100n`): that is
    // the one 5xx a door may answer (found by a long run: mutant 471,425 of seed 0x1352952).
    let caller_deadline = matches!(header & 3, 1 | 2) && answer["kind"] == "deadline_exceeded";
    assert!(!status.is_server_error() || (status == 504 && caller_deadline), "{path} answered {status}: {answer}");
    if !status.is_success() {
        assert!(answer["error"].is_string() && answer["kind"].is_string(), "{path} answered {status}: {answer}");
        return;
    }
    // Records are counted as the doors count them: skipped over, not read (a record that does
    // not read is answered as `INVALID_INPUT` in its place).
    #[derive(serde::Deserialize)]
    struct Native<'a> {
        #[serde(borrow)]
        rollouts: Vec<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct OpenRlhf {
        query: input::Count,
    }
    let text = std::str::from_utf8(body).expect("a body that was scored is UTF-8");
    let (records, results) = match route {
        0 => (serde_json::from_str::<Native>(text).ok().map(|n| n.rollouts.len()), answer["results"].as_array().map(Vec::len)),
        1 => (nova::count_request(text).ok(), answer.as_array().map(Vec::len)),
        2 => {
            assert_eq!(answer["rewards"], answer["scores"]);
            (serde_json::from_str::<OpenRlhf>(text).ok().map(|c| c.query.0), answer["rewards"].as_array().map(Vec::len))
        }
        _ => panic!("{path} answered {status}: {answer}"),
    };
    let records = records.unwrap_or_else(|| panic!("{path} scored a body without countable records: {text:?}"));
    assert_eq!(results, Some(records), "{path}: one result per record: {answer}");
    assert!(records <= FIXTURE_MAX_ROLLOUTS, "{path} scored {records} rollouts, past the cap");
}

/// The lines of a JSONL text as the offline reader counts them: a last line without a newline
/// counts.
fn lines_in(text: &[u8]) -> usize {
    text.iter().filter(|&&b| b == b'\n').count() + usize::from(text.last().is_some_and(|&b| b != b'\n'))
}

/// A scored line with what differs between two runs (the wall time) taken out.
fn steady(line: &str) -> Value {
    let mut v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("output line {line:?} is not JSON: {e}"));
    if let Some(o) = v.as_object_mut() {
        o.remove("latency_us");
    }
    v
}

/// A directory of its own for one call, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(fx: &Fixture) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = fx.dir.join(format!("scratch-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&dir).expect("creating a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Offline JSONL scoring: the input file is `data` after a mode byte, scored by [`offline::run`]
/// with the echo reward. The mode picks the batch size (1, 2, 3 or 64), `--max-line-bytes` (64 or
/// 1 MiB), and whether to resume: then the next 5 bytes cut the first run's output (a `u16`
/// length) and flip one of its bytes (a `u16` position and an XOR mask), that is written as the
/// partial file of a second run with `--resume`.
///
/// Checks: a run never fails on what the input holds; one output line per input line, each a
/// JSON object with its id and a known status; a line that is not UTF-8, blank or over the cap
/// is `INVALID_INPUT` under `line-N`. Resuming from an untouched prefix gives the same output as
/// the uninterrupted run (when no line spells out an echo answer, whose result may depend on the
/// instance's history); from a damaged one, that output or a refusal of the partial file.
pub fn jsonl(fx: &Fixture, data: &[u8]) {
    let (mode, rest) = data.split_first().map_or((0, &[][..]), |(m, r)| (*m, r));
    let resume = mode & 1 != 0;
    let batch_size = [1, 2, 3, 64][usize::from(mode >> 1 & 3)];
    let max_line_bytes = if mode & 8 != 0 { 64 } else { 1 << 20 };
    let (spec, input) = if resume { rest.split_at(rest.len().min(5)) } else { (&[][..], rest) };
    let scratch = Scratch::new(fx);
    let input_path = scratch.0.join("in.jsonl");
    std::fs::write(&input_path, input).expect("writing the input");
    let job = |output: &str, resume: bool| ScoreJob {
        input: input_path.clone(),
        output: Some(scratch.0.join(output)),
        resume,
        batch_size,
        max_line_bytes,
        progress: false,
    };
    let summary = offline::run(&fx.echo, &job("out.jsonl", false)).unwrap_or_else(|e| panic!("scoring failed: {e:#}"));
    let expected = lines_in(input);
    assert_eq!(summary.lines, expected, "one output line per input line");
    let output = std::fs::read_to_string(scratch.0.join("out.jsonl")).expect("the output is UTF-8 text");
    assert_eq!(lines_in(output.as_bytes()), expected);
    let pieces: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    for (n, out) in output.lines().enumerate() {
        let v = steady(out);
        let status = v["status"].as_str().unwrap_or_else(|| panic!("output line {out:?} has no status"));
        assert!(Status::ALL.iter().any(|s| s.as_str() == status), "unknown status in {out:?}");
        assert!(v["id"].is_string(), "output line {out:?} has no id");
        // The cap counts the line's newline; a `\r` before it is not part of the record.
        let length = pieces[n].len() + usize::from(n + 1 < pieces.len());
        let text = pieces[n].strip_suffix(b"\r").unwrap_or(pieces[n]);
        if length > max_line_bytes || std::str::from_utf8(text).map_or(true, |s| s.trim().is_empty()) {
            let line_id = format!("line-{}", n + 1);
            assert_eq!((v["id"].as_str(), status), (Some(line_id.as_str()), "INVALID_INPUT"), "{out}");
        }
    }
    if !resume {
        return;
    }
    let at = |i: usize| usize::from(spec.get(i).copied().unwrap_or(0));
    let mut partial = output.as_bytes()[..(at(0) << 8 | at(1)) % (output.len() + 1)].to_vec();
    let mask = spec.get(4).copied().unwrap_or(0);
    if mask != 0 && !partial.is_empty() {
        let i = (at(2) << 8 | at(3)) % partial.len();
        partial[i] ^= mask;
    }
    let resumed = scratch.0.join("resumed.jsonl");
    std::fs::write(offline::partial_path(&resumed).expect("a file name"), &partial).expect("writing the partial file");
    match offline::run(&fx.echo, &job("resumed.jsonl", true)) {
        Ok(summary) => {
            assert_eq!(summary.lines, expected, "a resumed run answers every line");
            let again = std::fs::read_to_string(&resumed).expect("the resumed output is UTF-8 text");
            assert_eq!(lines_in(again.as_bytes()), expected);
            // Byte-identical only for a plugin whose answer for a rollout depends on that rollout
            // alone. The echo guest's spelled-out answers (`ANS:`) are not: their pointers may
            // reach memory an earlier call of the same instance left behind, and a resumed run
            // batches the lines differently (found by a long run: mutant 2,413 of seed 0x1352952).
            if mask == 0 && !data.windows(ECHO_ANSWER_PREFIX.len()).any(|w| w == ECHO_ANSWER_PREFIX.as_bytes()) {
                let steady_lines = |text: &str| text.lines().map(steady).collect::<Vec<_>>();
                assert_eq!(steady_lines(&again), steady_lines(&output), "resuming changed the output");
            }
        }
        Err(RunError::Data(e)) if mask != 0 => {
            assert!(format!("{e:#}").starts_with("--resume: "), "{e:#}");
        }
        Err(e) => panic!("resuming from {} of {} bytes (mask {mask:#x}) failed: {e:#}", partial.len(), output.len()),
    }
}

/// Whether a TOML value names anything outside the directory it is read from (a path separator
/// or a parent step in a key or a string), or a device: the config target keeps the fuzzer from
/// having the loader read `/dev/zero` or the machine's files.
fn leaves_the_directory(value: &toml::Value) -> bool {
    let outside = |s: &str| s.contains(['/', '\\']) || s.contains("..");
    match value {
        toml::Value::String(s) => outside(s),
        toml::Value::Array(items) => items.iter().any(leaves_the_directory),
        toml::Value::Table(t) => t.iter().any(|(k, v)| outside(k) || leaves_the_directory(v)),
        _ => false,
    }
}

/// The rewards config: TOML text read by [`Rewards::from_toml`] against the fixture's directory
/// (plugins resolve to the echo guest, `fixtures = "fixtures"` to an empty directory); then one
/// rollout through every reward it loaded. Texts that name paths outside the directory are
/// skipped (see [`leaves_the_directory`]).
///
/// Checks: loading fails with a message or loads; each loaded reward (the first 16, by name)
/// answers one scored rollout with the rollout's id, and a finite score when it is `OK`.
pub fn rewards_config(fx: &Fixture, data: &[u8]) {
    // The file is read with `read_to_string`: not UTF-8 is an I/O error before any parsing.
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.parse::<toml::Table>().is_ok_and(|t| leaves_the_directory(&toml::Value::Table(t))) {
        return;
    }
    let rewards = match Rewards::from_toml(&fx.host, text, &fx.dir) {
        Ok(rewards) => rewards,
        Err(e) => {
            assert!(!format!("{e:#}").is_empty());
            return;
        }
    };
    let probe = Rollout {
        id: "probe".into(),
        messages: vec![Message { role: "user".into(), content: "q".into() }, Message { role: "assistant".into(), content: "hello".into() }],
        reference: "null".into(),
        metadata: "{}".into(),
        group: None,
    };
    for reward in rewards.iter().take(16) {
        let scored = reward.score_batch(std::slice::from_ref(&probe));
        assert_eq!(scored.len(), 1, "reward `{}`", reward.name);
        let s = &scored[0];
        assert_eq!(s.id, "probe");
        if s.status == Status::Ok {
            assert!(s.score.is_some_and(f64::is_finite), "reward `{}`: {s:?}", reward.name);
        }
    }
}

/// Values a formula's variables take in [`formula`].
const FORMULA_VALUES: [f64; 10] = [0.0, 1.0, -1.0, 0.5, 2.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, -0.0];

/// A formula: [`Formula::parse`] of `data` after its first byte (as text, invalid UTF-8
/// replaced), then `eval` with the variables bound to values the first byte picks. Checks: a
/// refusal points at a column inside the text; a parsed formula is within the length cap, nests
/// no deeper than [`MAX_FORMULA_DEPTH`], has distinct variables, and evaluates the same twice.
pub fn formula(_: &Fixture, data: &[u8]) {
    let (pick, text) = data.split_first().map_or((0, &[][..]), |(p, t)| (usize::from(*p), t));
    let text = String::from_utf8_lossy(text);
    let f = match Formula::parse(&text) {
        Ok(f) => f,
        Err(e) => {
            assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "column {} of {text:?}: {e}", e.column);
            return;
        }
    };
    assert!(text.len() <= MAX_FORMULA_BYTES);
    assert_eq!(f.source(), text);
    let mut depth = 0usize;
    let mut deepest = 0;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    // The whole formula is one level; each `(` (a group or a call) opens another.
    assert!(deepest < MAX_FORMULA_DEPTH, "{text:?} parsed with {deepest} levels of parentheses");
    for (i, v) in f.vars().iter().enumerate() {
        assert!(!f.vars()[..i].contains(v), "variable {v} has two slots");
    }
    let values: Vec<f64> = (0..f.vars().len()).map(|i| FORMULA_VALUES[(pick + 7 * i) % FORMULA_VALUES.len()]).collect();
    let (a, b) = (f.eval(&values), f.eval(&values));
    assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{text:?} evaluated to {a} then {b}");
}

/// Reads fuzz input front to back; past its end every read is 0.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        self.0 = rest;
        first
    }
    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) << 8 | u16::from(self.u8())
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | u64::from(self.u8()))
    }
    /// A number: often small and exact, sometimes any bit pattern (NaN, infinities, subnormals).
    fn f64(&mut self) -> f64 {
        match self.u8() % 4 {
            0 => f64::from_bits(self.u64()),
            1 => [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN_POSITIVE, -0.0][usize::from(self.u8()) % 6],
            _ => f64::from(self.u8()) / 4.0 - 8.0,
        }
    }
    /// Text bytes: short ones taken from the input, or long runs of one byte up to `max` (to reach
    /// the caps: a reason of 64 KiB, an error of 4 KiB, a metric name of 128 bytes), sometimes not
    /// UTF-8.
    fn text(&mut self, max: usize) -> Vec<u8> {
        let kind = self.u8();
        let mut bytes = match kind % 4 {
            0 | 1 => {
                let n = usize::from(self.u8() % 24);
                (0..n).map(|_| self.u8() % 95 + 32).collect()
            }
            2 => vec![b'x'; usize::from(self.u16()).min(max)],
            _ => vec![b'n'; [0, 1, 127, 128, 129, 4095, 4096, 4097, 65536, 65537][usize::from(self.u8()) % 10].min(max)],
        };
        if kind & 0x80 != 0 {
            // Not UTF-8: a lone continuation byte, a truncated sequence or a surrogate's encoding.
            let bad: &[u8] = [&b"\x80"[..], b"\xc3", b"\xed\xa0\x80", b"\xff"][usize::from(kind >> 4 & 3)];
            let at = if bytes.is_empty() { 0 } else { usize::from(self.u8()) % bytes.len() };
            bytes.splice(at..at, bad.iter().copied());
        } else if kind & 0x40 != 0 && !bytes.is_empty() {
            // Multibyte characters, so a cut of a long text must find a character boundary.
            bytes.extend_from_slice("é😀".as_bytes());
        }
        bytes
    }
}

/// One `result<score, rollout-error>` as the guest lays it out, before it is encoded.
enum AnswerItem {
    Score {
        value: f64,
        metrics: Vec<(Vec<u8>, f64, u8)>,
        reason: Option<Vec<u8>>,
        reason_tag: u8,
    },
    Refusal {
        tag: u8,
        message: Vec<u8>,
    },
    /// A result whose discriminant is neither 0 nor 1.
    BadTag(u8),
}

/// Lays out a list of results in the canonical ABI at guest address [`ECHO_ANSWER_BASE`]: the
/// list's (address, length), then its elements (40 bytes each: a tag, then at 8 the payload),
/// then the metric lists (24 bytes each) and the strings.
fn encode_answer(items: &[AnswerItem]) -> Vec<u8> {
    let base = ECHO_ANSWER_BASE as usize;
    let mut heap: Vec<u8> = Vec::new();
    let elements = 8;
    let heap_start = elements + 40 * items.len();
    let mut out = vec![0u8; heap_start];
    // Appends bytes to the heap (aligned), returning their guest address.
    let put = |heap: &mut Vec<u8>, bytes: &[u8], align: usize| -> u32 {
        while !(heap_start + heap.len()).is_multiple_of(align) {
            heap.push(0);
        }
        let at = base + heap_start + heap.len();
        heap.extend_from_slice(bytes);
        at as u32
    };
    let w32 = |buf: &mut [u8], at: usize, v: u32| buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
    w32(&mut out, 0, (base + elements) as u32);
    w32(&mut out, 4, items.len() as u32);
    for (i, item) in items.iter().enumerate() {
        let e = elements + 40 * i;
        match item {
            AnswerItem::Score { value, metrics, reason, reason_tag } => {
                out[e] = 0;
                out[e + 8..e + 16].copy_from_slice(&value.to_le_bytes());
                let mut list = vec![0u8; 24 * metrics.len()];
                for (j, (name, value, kind)) in metrics.iter().enumerate() {
                    let name_at = put(&mut heap, name, 1);
                    w32(&mut list, 24 * j, name_at);
                    w32(&mut list, 24 * j + 4, name.len() as u32);
                    list[24 * j + 8..24 * j + 16].copy_from_slice(&value.to_le_bytes());
                    list[24 * j + 16] = *kind;
                }
                let list_at = put(&mut heap, &list, 8);
                w32(&mut out, e + 16, list_at);
                w32(&mut out, e + 20, metrics.len() as u32);
                out[e + 24] = *reason_tag;
                if let Some(reason) = reason {
                    let at = put(&mut heap, reason, 1);
                    w32(&mut out, e + 28, at);
                    w32(&mut out, e + 32, reason.len() as u32);
                }
            }
            AnswerItem::Refusal { tag, message } => {
                out[e] = 1;
                out[e + 8] = *tag;
                let at = put(&mut heap, message, 1);
                w32(&mut out, e + 12, at);
                w32(&mut out, e + 16, message.len() as u32);
            }
            AnswerItem::BadTag(tag) => out[e] = *tag,
        }
    }
    out.extend_from_slice(&heap);
    out
}

/// What the host must make of a well-formed answer of one item under `limits` (the rules of the
/// plugin's answer check): the score, or the status of the refusal and its message's tail.
fn expected_outcome(item: &AnswerItem, limits: &Limits) -> Option<Result<PluginScore, (Status, String)>> {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    Some(match item {
        AnswerItem::Refusal { tag, message } => {
            let message = bounded_guest_text(&text(message)?, MAX_GUEST_ERROR_BYTES).into_owned();
            match tag {
                0 => Err((Status::InvalidInput, message)),
                1 => Err((Status::PluginError, message)),
                _ => return None,
            }
        }
        AnswerItem::BadTag(_) => return None,
        AnswerItem::Score { value, metrics, reason, reason_tag } => {
            let reason = match (reason_tag, reason) {
                (0, _) => None,
                (1, Some(r)) => Some(text(r)?),
                _ => return None,
            };
            let mut kept = Vec::new();
            for (name, value, kind) in metrics {
                let kind = match kind {
                    0 => MetricKind::Reward,
                    1 => MetricKind::Metric,
                    _ => return None,
                };
                kept.push(Metric { name: text(name)?, value: *value, kind });
            }
            let refused = !value.is_finite()
                || kept.len() > limits.max_metrics
                || reason.as_ref().is_some_and(|r| r.len() > limits.max_reason_bytes)
                || kept.iter().any(|m| m.name.is_empty() || m.name.len() > MAX_METRIC_NAME_BYTES || !m.value.is_finite());
            if refused { Err((Status::PluginError, String::new())) } else { Ok(PluginScore { value: *value, metrics: kept, reason }) }
        }
    })
}

/// What a plugin answers: the guest's result list, built from `data` (results, scores with any
/// bit pattern, metrics, reasons and refusals up to and past the caps, invalid UTF-8, bad
/// discriminants), laid out in the echo guest's memory, sometimes with a few bytes overwritten
/// (addresses and lengths out of bounds), then lifted and checked by the host
/// ([`Plugin::score`]). The first byte picks the limits: the defaults, or small caps.
///
/// Checks: one outcome per rollout; a score the host keeps is finite, with at most `max_metrics`
/// finite metrics named in 1 to [`MAX_METRIC_NAME_BYTES`] bytes and a reason within
/// `max_reason_bytes`; error texts are bounded; and an answer that is well formed (one item,
/// valid tags and UTF-8, nothing overwritten) gets exactly what the rules say.
pub fn guest_answer(fx: &Fixture, data: &[u8]) {
    let mut r = Reader(data);
    let mode = r.u8();
    let limits = if mode & 1 == 0 {
        Limits::default()
    } else {
        Limits { max_metrics: usize::from(mode >> 1 & 7), max_reason_bytes: usize::from(mode >> 4) * 8, ..Limits::default() }
    };
    let count = match r.u8() % 8 {
        0 => 0,
        1 => 2,
        _ => 1,
    };
    let items: Vec<AnswerItem> = (0..count)
        .map(|_| match r.u8() % 8 {
            0..=4 => {
                let value = r.f64();
                let n = match r.u8() % 16 {
                    15 => usize::from(r.u16() % 300),
                    k => usize::from(k % 4),
                };
                let metrics = (0..n)
                    .map(|_| {
                        let name = r.text(200);
                        let value = r.f64();
                        let kind = match r.u8() % 8 {
                            7 => r.u8(),
                            k => k % 2,
                        };
                        (name, value, kind)
                    })
                    .collect();
                let (reason_tag, reason) = match r.u8() % 8 {
                    0..=3 => (0, None),
                    4..=6 => (1, Some(r.text(70_000))),
                    _ => (r.u8(), Some(r.text(70_000))),
                };
                AnswerItem::Score { value, metrics, reason, reason_tag }
            }
            5 => AnswerItem::Refusal { tag: 0, message: r.text(10_000) },
            6 => AnswerItem::Refusal { tag: if r.u8() % 4 == 0 { r.u8() } else { 1 }, message: r.text(10_000) },
            _ => AnswerItem::BadTag(r.u8().max(2)),
        })
        .collect();
    let mut blob = encode_answer(&items);
    // Past the end of the input every byte reads 0: no overwrite.
    let overwrites = if r.u8() % 4 == 3 { 1 + r.u8() % 4 } else { 0 };
    for _ in 0..overwrites {
        let at = usize::from(r.u16()) % blob.len();
        blob[at] = r.u8();
    }
    let mut completion = String::with_capacity(ECHO_ANSWER_PREFIX.len() + 2 * blob.len());
    completion.push_str(ECHO_ANSWER_PREFIX);
    for b in &blob {
        completion.push_str(&format!("{b:02x}"));
    }
    let rollout = Rollout {
        id: "answer".into(),
        messages: vec![Message { role: "assistant".into(), content: completion }],
        reference: "null".into(),
        metadata: "{}".into(),
        group: None,
    };
    let outcomes = fx.plugin.score("{}", std::slice::from_ref(&rollout), &limits);
    assert_eq!(outcomes.len(), 1, "one outcome per rollout");
    let outcome = &outcomes[0];
    assert!(outcome.instructions <= limits.fuel);
    let label = "plugin \"fuzz-echo\" version 0.1.0";
    match &outcome.result {
        Ok(score) => {
            assert!(score.value.is_finite());
            assert!(score.metrics.len() <= limits.max_metrics);
            for m in &score.metrics {
                assert!(!m.name.is_empty() && m.name.len() <= MAX_METRIC_NAME_BYTES && m.value.is_finite(), "{m:?}");
            }
            assert!(score.reason.as_ref().is_none_or(|r| r.len() <= limits.max_reason_bytes));
        }
        Err(failure) => {
            assert!(matches!(failure.status, Status::InvalidInput | Status::PluginError), "{failure:?}");
            assert!(failure.message.starts_with(label), "{:?}", failure.message);
            assert!(failure.message.len() <= label.len() + MAX_GUEST_ERROR_BYTES + 512, "a {}-byte error", failure.message.len());
        }
    }
    if overwrites > 0 || items.len() != 1 {
        if items.len() != 1 && overwrites == 0 {
            assert!(outcome.result.is_err(), "{} results for one rollout were taken", items.len());
        }
        return;
    }
    let Some(expected) = expected_outcome(&items[0], &limits) else {
        assert!(outcome.result.as_ref().is_err_and(|f| f.status == Status::PluginError), "{:?}", outcome.result);
        return;
    };
    match (&outcome.result, expected) {
        (Ok(got), Ok(want)) => {
            assert_eq!(got.value.to_bits(), want.value.to_bits());
            assert_eq!((&got.metrics, &got.reason), (&want.metrics, &want.reason));
        }
        (Err(got), Err((status, tail))) => {
            assert_eq!(got.status, status, "{}", got.message);
            assert!(got.message.ends_with(&tail), "{:?} should end with {tail:?}", got.message);
        }
        (got, want) => panic!("the host made {got:?} of an answer that should give {want:?}"),
    }
}

/// A caller's timeout header (`x-timeout-ms` or `grpc-timeout`), as the HTTP library accepts it,
/// read by [`server::caller_deadline`], the one reader both doors call: it never panics, a
/// deadline it makes is never past the cap, and a `grpc-timeout` it parses is within the format's
/// range (at most 8 digits of hours).
pub fn timeout_header(_: &Fixture, data: &[u8]) {
    let Ok(value) = axum::http::HeaderValue::from_bytes(data) else { return };
    let cap = Duration::from_secs(60);
    for (x, g) in [(Some(value.as_bytes()), None), (None, Some(value.as_bytes()))] {
        if let Ok(deadline) = server::caller_deadline(x, g, cap) {
            assert!(deadline.allowed <= cap, "{value:?} allowed {:?}", deadline.allowed);
        }
    }
    if let Some(timeout) = server::parse_grpc_timeout(value.to_str().unwrap_or("")) {
        assert!(timeout <= Duration::from_secs(99_999_999 * 3600), "{value:?} parsed as {timeout:?}");
    }
}
