//! Fuzzing on stable Rust: every target of `reward_server::fuzz_targets` replays its seed corpus
//! (`tests/fuzz-corpus/<target>/`, inputs taken from the other tests) and then runs seeded
//! mutations of it: byte flips, inserts, deletions, splices of corpus entries, and mutations that
//! know the text formats (deep nesting, huge numbers, duplicate keys, wrong types, truncation,
//! invalid UTF-8, the format's own tokens). No coverage feedback: the nightly-only libFuzzer run
//! is `fuzz/` (see its README).
//!
//! Environment:
//! - `FUZZ_ITERS`: mutations per target (default 1,000: the whole file runs in about 5 s);
//! - `FUZZ_SECS`: instead, mutate each target for this many seconds;
//! - `FUZZ_SEED`: the seed (default fixed, so a CI failure replays); printed by every run;
//! - `FUZZ_HANG_SECS`: one input running longer than this is a hang (default 20): the input is
//!   saved and the process aborts;
//! - `FUZZ_TRACE=1`: write each input to `target/fuzz-crashes/<target>/current` before running it,
//!   to find the input of a crash that kills the process (a stack overflow).
//!
//! A crash (a panic, a failed check) or a hang is saved under `target/fuzz-crashes/<target>/` and
//! the test fails naming the file. Found crashes stay as tests at the end of this file.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use reward_server::fuzz_targets::{ECHO_GUEST_WAT, Fixture, TARGETS};

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture::new(&wat::parse_str(ECHO_GUEST_WAT).expect("the echo guest assembles")).expect("building the fixture"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = root().join("tests/fuzz-corpus").join(target);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!inputs.is_empty(), "{} holds no seeds", dir.display());
    inputs
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// SplitMix64: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// How a target's inputs are written, for the mutations that know the format.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Toml,
    Formula,
    Binary,
}

fn format_of(target: &str) -> Format {
    match target {
        "lambda" | "openrlhf" | "http" | "jsonl" => Format::Json,
        "rewards_config" => Format::Toml,
        "formula" => Format::Formula,
        _ => Format::Binary,
    }
}

/// Tokens of each format, inserted whole (libFuzzer calls this a dictionary).
fn dictionary(format: Format) -> &'static [&'static [u8]] {
    match format {
        Format::Json => &[
            b"\"messages\"",
            b"\"role\"",
            b"\"content\"",
            b"\"assistant\"",
            b"\"nova_assistant\"",
            b"\"user\"",
            b"\"type\"",
            b"\"text\"",
            b"\"image\"",
            b"\"reference_answer\"",
            b"\"metadata\"",
            b"\"completion\"",
            b"\"prompt\"",
            b"\"reference\"",
            b"\"id\"",
            b"\"query\"",
            b"\"prompts\"",
            b"\"labels\"",
            b"\"reward\"",
            b"\"rollouts\"",
            b"\"echo\"",
            b"\"ANS:\"",
            b"null",
            b"true",
            b"false",
            b"[]",
            b"{}",
            b"\"\"",
            b":",
            b",",
            b"\n",
            b"\r\n",
            b"{\"role\": \"assistant\", \"content\": \"x\"}",
            b"{\"type\": \"text\", \"text\": \"t\"}",
        ],
        Format::Toml => &[
            b"[rewards.",
            b"[rewards.a]\n",
            b"[rewards.b]\n",
            b"plugin = \"echo\"\n",
            b"plugin = \"echo.wasm\"\n",
            b"components = { a = \"b\" }\n",
            b"components = { x = \"echo\" }\n",
            b"formula = \"a\"\n",
            b"formula = \"",
            b"limits = { fuel = ",
            b"timeout_ms = ",
            b"memory_mib = ",
            b"instance_reuse = ",
            b"max_metrics = ",
            b"max_reason_bytes = ",
            b"on_error = \"abstain\"\n",
            b"on_error = \"fail\"\n",
            b"fixtures = \"fixtures\"\n",
            b"config = ",
            b"description = ",
            b"plugin_dir = \"target\"\n",
            b"18446744073709551615",
            b"9223372036854775807",
            b"0",
            b"-1",
            b"inf",
            b"nan",
            b"1e308",
            b"[[",
            b"]]",
            b"{ ",
            b" }",
            b"\"\"\"",
            b"'''",
            b"\n",
            b"=",
        ],
        Format::Formula => &[
            b"if(", b"min(", b"max(", b"clamp(", b"abs(", b"&&", b"||", b"!", b"!=", b">=", b"<=", b"==", b"<", b">", b"+", b"-", b"*",
            b"/", b"(", b")", b",", b".", b"a", b"b.m", b"fmt", b"correct", b"1e308", b"1e-320", b"0.5", b"1.5e1", b"e", b"E-", b"_", b" ",
        ],
        Format::Binary => &[
            b"\x0a",
            b"\x12",
            b"\x1a",
            b"\x22",
            b"\x2a",
            b"\x08",
            b"\x10",
            b"\x00",
            b"\xff",
            b"\x7f",
            b"\x80",
            b"\xff\xff\xff\xff\x0f",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
            b"\x12\x00",
            b"\x0a\x09assistant",
            b"\x00\x00\x00\x00\x00\x00\xf0\x7f",
            b"\x00\x00\x00\x00\x00\x00\xf8\x7f",
        ],
    }
}

const NUMBERS: &[&str] = &[
    "1e999999",
    "-1e309",
    "123456789012345678901234567890",
    "0.00000000000000000000000000000000000001",
    "-0",
    "1.7976931348623157e308",
    "18446744073709551616",
    "9007199254740993",
    "-9223372036854775809",
    "1e-400",
    "NaN",
    "Infinity",
    "0x10",
    "01",
    "1.",
    ".5",
    "1e",
];
const VALUES: &[&str] = &["null", "true", "0", "-1.5", "\"s\"", "[]", "{}", "[1, 2]", "{\"a\": 1}", "\"\"", "[{}]", "[[]]"];
const BAD_BYTES: &[&[u8]] = &[b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xff", b"\xf4\x90\x80\x80", b"\x00", b"\xef\xbb\xbf"];
const ESCAPES: &[&str] = &["\\ud800", "\\udfff\\ud800", "\\u0000", "\\\"", "\\\\", "\\n", "\\x", "\\u12", "\u{feff}", "\u{2028}"];

/// Positions just after a byte in `set`.
fn after(data: &[u8], set: &[u8]) -> Vec<usize> {
    data.iter().enumerate().filter(|(_, b)| set.contains(b)).map(|(i, _)| i + 1).collect()
}

/// One mutation of `data`; `others` are the corpus, for splices.
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, others: &[Vec<u8>], format: Format) {
    let len = data.len();
    let text_format = format != Format::Binary;
    let choice = rng.below(if text_format { 20 } else { 11 });
    match choice {
        // Bytes.
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.next() as u8;
        }
        2 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            data.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            data.drain(at..at + n);
        }
        4 if len > 0 => {
            // Repeat a range: long strings, long arrays.
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            let piece = data[at..at + n].to_vec();
            let times = *rng.pick(&[1, 2, 10, 100, 1000]);
            let to = rng.below(len + 1);
            data.splice(to..to, piece.iter().copied().cycle().take(n * times));
        }
        5 => {
            // Splice: a prefix of this one and a suffix of another.
            let other = rng.pick(others);
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        6 => {
            let token = *rng.pick(dictionary(format));
            let at = rng.below(len + 1);
            data.splice(at..at, token.iter().copied());
        }
        7 if len > 0 => {
            // Truncation.
            data.truncate(rng.below(len));
        }
        8 if len > 1 => {
            // Swap two ranges' bytes.
            let (a, b) = (rng.below(len), rng.below(len));
            data.swap(a, b);
        }
        9 => {
            let at = rng.below(len + 1);
            let bytes = *rng.pick(BAD_BYTES);
            data.splice(at..at, bytes.iter().copied());
        }
        10 if len > 0 => {
            // An interesting byte at a random place: lengths, tags and discriminants.
            let i = rng.below(len);
            data[i] = *rng.pick(&[0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, b'"', b'\\', b'\n']);
        }
        // Text formats.
        11 => {
            // Deep nesting, just under and past the parsers' limits.
            let depth = *rng.pick(&[10, 63, 64, 65, 127, 128, 129, 1000, 5000]);
            let (open, close): (&[u8], &[u8]) = match (format, rng.below(3)) {
                (Format::Formula, 0) => (b"(", b")"),
                (Format::Formula, 1) => (b"abs(", b")"),
                (Format::Formula, _) => (b"-", b""),
                (Format::Toml, 0) => (b"[", b"]"),
                (Format::Toml, _) => (b"{a=", b"}"),
                (_, 0) => (b"[", b"]"),
                (_, _) => (b"{\"a\":", b"}"),
            };
            let at = rng.below(len + 1);
            let mut nest = open.repeat(depth);
            nest.extend_from_slice(b"1");
            if !rng.chance(4) {
                nest.extend_from_slice(&close.repeat(depth));
            }
            data.splice(at..at, nest);
        }
        12 => {
            // A number token replaced, or a huge one inserted.
            let number = rng.pick(NUMBERS).as_bytes();
            let starts: Vec<usize> =
                (0..len).filter(|&i| data[i].is_ascii_digit() && (i == 0 || !data[i - 1].is_ascii_alphanumeric())).collect();
            if starts.is_empty() {
                let at = rng.below(len + 1);
                data.splice(at..at, number.iter().copied());
            } else {
                let start = *rng.pick(&starts);
                let end = (start..len).find(|&i| !matches!(data[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-' | b'_')).unwrap_or(len);
                data.splice(start..end, number.iter().copied());
            }
        }
        13 => {
            // A duplicate key: a `"key": value` (or `key = value`) span copied next to itself.
            let quotes: Vec<usize> = (0..len).filter(|&i| data[i] == b'"').collect();
            if let Some(&start) = quotes.get(rng.below(quotes.len().max(1))) {
                let end = (start + 1..len).find(|&i| matches!(data[i], b',' | b'}' | b'\n')).unwrap_or(len);
                let mut piece = data[start..end].to_vec();
                piece.extend_from_slice(if format == Format::Toml { b"\n" } else { b", " });
                data.splice(start..start, piece);
            }
        }
        14 => {
            // A value of the wrong type after a `:` or `=`.
            let spots = after(data, if format == Format::Toml { b"=" } else { b":" });
            if let Some(&at) = spots.get(rng.below(spots.len().max(1))) {
                let end = (at..len).find(|&i| matches!(data[i], b',' | b'}' | b']' | b'\n')).unwrap_or(len);
                let value = rng.pick(VALUES).as_bytes();
                data.splice(at..end, value.iter().copied());
            }
        }
        15 => {
            // An escape or a character that needs care, inside a string.
            let spots = after(data, b"\"");
            let at = spots.get(rng.below(spots.len().max(1))).copied().unwrap_or(0).min(len);
            let escape = rng.pick(ESCAPES).as_bytes();
            data.splice(at..at, escape.iter().copied());
        }
        16 if len > 0 => {
            // Truncation just inside a structure.
            let spots = after(data, b"{[\",:=(");
            if let Some(&at) = spots.get(rng.below(spots.len().max(1))) {
                data.truncate(at);
            }
        }
        17 => {
            // A whole element repeated: an array of many records.
            let spots = after(data, b"[");
            if let Some(&at) = spots.get(rng.below(spots.len().max(1))) {
                let end = (at..len).find(|&i| data[i] == b',' || data[i] == b']').unwrap_or(len);
                let mut piece = data[at..end].to_vec();
                piece.push(b',');
                let times = *rng.pick(&[2, 63, 64, 65, 300]);
                data.splice(at..at, piece.repeat(times));
            }
        }
        18 => {
            // Whitespace where none was, or none where some was.
            let at = rng.below(len + 1);
            let ws: &[u8] = rng.pick(&[" ", "\t", "\n", "\r", "\x0c", "\u{a0}"]).as_bytes();
            data.splice(at..at, ws.iter().copied());
        }
        _ => {
            // Start over from another corpus entry (the next mutations change it).
            *data = rng.pick(others).clone();
        }
    }
}

/// A mutant of `base`: one to five stacked mutations.
fn mutate(rng: &mut Rng, base: &[u8], corpus: &[Vec<u8>], format: Format) -> Vec<u8> {
    let mut data = base.to_vec();
    for _ in 0..1 + rng.below(5) {
        mutate_once(rng, &mut data, corpus, format);
    }
    // Bound the size: inputs stay small enough that one takes milliseconds.
    data.truncate(1 << 20);
    data
}

fn crash_dir(target: &str) -> PathBuf {
    root().parent().unwrap().join("target/fuzz-crashes").join(target)
}

fn save(target: &str, name: &str, input: &[u8]) -> PathBuf {
    let dir = crash_dir(target);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, input).unwrap();
    path
}

/// The input that is running, for the watchdog.
type Running = Arc<Mutex<Option<(Instant, Vec<u8>)>>>;

/// Aborts the process when one input runs past the hang limit, after saving it.
fn watchdog(target: &'static str, running: Running, limit: Duration) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let guard = running.lock().unwrap();
            if let Some((started, input)) = guard.as_ref()
                && started.elapsed() > limit
            {
                let path = save(target, "hang", input);
                eprintln!("fuzz {target}: an input ran for more than {limit:?} (a hang), saved as {}", path.display());
                std::process::abort();
            }
        }
    });
}

fn show(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(&input[..input.len().min(400)]).into_owned();
    format!("{text:?}{}", if input.len() > 400 { format!(" ... ({} bytes)", input.len()) } else { String::new() })
}

fn run_target(name: &'static str) {
    let target = TARGETS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no target {name}")).1;
    let fx = fixture();
    let corpus = corpus(name);
    let format = format_of(name);
    let iters = env_u64("FUZZ_ITERS").unwrap_or(1000);
    let secs = env_u64("FUZZ_SECS").map(Duration::from_secs);
    let seed = env_u64("FUZZ_SEED").unwrap_or(0x5eed_f022);
    let trace = std::env::var_os("FUZZ_TRACE").is_some_and(|v| v == "1");
    let running: Running = Arc::new(Mutex::new(None));
    watchdog(name, running.clone(), Duration::from_secs(env_u64("FUZZ_HANG_SECS").unwrap_or(20)));
    // Each target gets its own stream, so adding a target does not change the others' inputs.
    let mut rng = Rng(seed ^ name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)));
    let started = Instant::now();
    let mut execs = 0u64;
    let mut slowest = (Duration::ZERO, Vec::new());
    let mut exec = |input: &[u8], what: &str| {
        if trace {
            save(name, "current", input);
        }
        *running.lock().unwrap() = Some((Instant::now(), input.to_vec()));
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| target(fx, input)));
        let took = t.elapsed();
        *running.lock().unwrap() = None;
        execs += 1;
        if took > slowest.0 {
            slowest = (took, input.to_vec());
        }
        if let Err(panic) = outcome {
            let message =
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            let hash = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
            let path = save(name, &format!("crash-{hash:016x}"), input);
            panic!("fuzz {name}: {what} crashed: {message}\ninput ({} bytes, saved as {}): {}", input.len(), path.display(), show(input));
        }
    };
    for (i, input) in corpus.iter().enumerate() {
        exec(input, &format!("seed {i}"));
    }
    let mut last = corpus[0].clone();
    let mut i = 0u64;
    while match secs {
        Some(limit) => started.elapsed() < limit,
        None => i < iters,
    } {
        // Half the time a fresh mutant of a seed, half the time the last mutant mutated again.
        let base = if rng.chance(2) { rng.pick(&corpus).clone() } else { last };
        let input = mutate(&mut rng, &base, &corpus, format);
        exec(&input, &format!("mutant {i} (seed {seed:#x})"));
        last = input;
        i += 1;
    }
    let elapsed = started.elapsed();
    println!(
        "fuzz {name}: {execs} executions ({} seeds, {i} mutants) in {:.2} s, {:.0}/s, seed {seed:#x}, 0 crashes; slowest input {:.1} ms ({} bytes)",
        corpus.len(),
        elapsed.as_secs_f64(),
        execs as f64 / elapsed.as_secs_f64().max(1e-9),
        slowest.0.as_secs_f64() * 1e3,
        slowest.1.len(),
    );
}

#[test]
fn fuzz_lambda() {
    run_target("lambda");
}

#[test]
fn fuzz_openrlhf() {
    run_target("openrlhf");
}

#[test]
fn fuzz_grpc() {
    run_target("grpc");
}

#[test]
fn fuzz_http() {
    run_target("http");
}

#[test]
fn fuzz_jsonl() {
    run_target("jsonl");
}

#[test]
fn fuzz_rewards_config() {
    run_target("rewards_config");
}

#[test]
fn fuzz_formula() {
    run_target("formula");
}

#[test]
fn fuzz_guest_answer() {
    run_target("guest_answer");
}

#[test]
fn fuzz_timeout_header() {
    run_target("timeout_header");
}

#[test]
fn every_target_has_a_test_and_seeds() {
    let source = std::fs::read_to_string(root().join("tests/fuzz.rs")).unwrap();
    for (name, _) in TARGETS {
        assert!(source.contains(&format!("run_target(\"{name}\")")), "target {name} has no test here");
        assert!(!corpus(name).is_empty());
    }
}

/// Writes the seeds that are binary (protobuf messages, guest answers) or built by code into
/// `tests/fuzz-corpus/`. Run it after changing them: `cargo test --release --test fuzz -- --ignored write_built_seeds`.
#[test]
#[ignore = "writes the corpus; run by hand"]
fn write_built_seeds() {
    seeds::write_all(&root().join("tests/fuzz-corpus"));
}

/// Runs one target on one input, as the fuzz loop does.
fn run_one(name: &str, input: &[u8]) {
    let target = TARGETS.iter().find(|(n, _)| *n == name).unwrap().1;
    target(fixture(), input);
}

/// A seed of the corpus, by target and file name.
fn seed(target: &str, name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fuzz-corpus").join(target).join(name)).unwrap()
}

/// A rewards config of `n` composites in a chain over the echo plugin, each the previous one's
/// only component. `bottom_first` names them so that the loader (which goes in name order) reaches
/// the plugin first and never has more than two levels on its own stack.
fn component_chain(n: usize, bottom_first: bool) -> String {
    let name = |level: usize| if bottom_first { format!("c{:05}", n - level) } else { format!("c{level:05}") };
    let mut text = String::new();
    for level in 0..n {
        text.push_str(&format!("[rewards.{}]\ncomponents = {{ a = \"{}\" }}\nformula = \"a\"\n", name(level), name(level + 1)));
    }
    text.push_str(&format!("[rewards.{}]\nplugin = \"echo\"\n", name(n)));
    text
}

/// A rewards config of `depth` composites, each with two components that are both the next one.
fn shared_components(depth: usize) -> String {
    let mut text = String::new();
    for level in 0..depth {
        text.push_str(&format!(
            "[rewards.d{level:03}]\ncomponents = {{ a = \"d{0:03}\", b = \"d{0:03}\" }}\nformula = \"a + b\"\n",
            level + 1
        ));
    }
    text.push_str(&format!("[rewards.d{depth:03}]\nplugin = \"echo\"\n"));
    text
}

// Crashes found, each kept as a test with its input in the corpus. See: issue 16 (fuzzing).

/// `Formula::parse` counted the columns of a formula over the 4,096-byte cap by cutting it at
/// byte 4,096, which panicked when a character straddled that byte. Found by `fuzz_formula`
/// (mutant 764 of seed 0x5eedf022: 2,625 bytes that are not UTF-8, each read as a 3-byte
/// U+FFFD); reachable from a rewards config (`formula = "..."`), so a config load or reload
/// panicked. Fixed in `engine/formula.rs`: the column is that of the character that crosses the
/// cap.
#[test]
fn r16_a_formula_over_the_cap_with_a_character_across_it() {
    // 4,097 bytes: the last `é` spans bytes 4,095 and 4,096.
    let text = format!("a{}", "é".repeat(2048));
    let e = reward_server::engine::formula::Formula::parse(&text).unwrap_err();
    assert!(e.message.contains("longer than the 4096 allowed") && e.column == 2049, "{e}");
    run_one("formula", &seed("formula", "crash-char-boundary"));
    run_one("rewards_config", &seed("rewards_config", "crash-formula-char-boundary"));
}

/// `clamp(x, lo, hi)` in a formula evaluated with `f64::clamp`, which panics when `lo > hi` or a
/// bound is NaN; the bounds come from component scores, so a formula such as
/// `clamp(fmt, correct, 1)` panicked while scoring a rollout whose `correct` is above 1 (and
/// `clamp(x, 1, 0)` on every rollout). Found by libFuzzer on `formula` (`clamp(a * 3, a, 1)` with
/// `a` = 2.5). Fixed in `engine/formula.rs`: such a clamp is NaN, which a composite refuses as a
/// non-finite score naming the formula. Kept: `formula/crash-clamp-bounds`.
#[test]
fn r16_clamp_with_its_bounds_out_of_order() {
    use reward_server::engine::formula::Formula;
    assert!(Formula::parse("clamp(a * 3, a, 1)").unwrap().eval(&[2.5]).is_nan());
    assert!(Formula::parse("clamp(1, 1, 0)").unwrap().eval(&[]).is_nan());
    assert!(Formula::parse("clamp(1, 0 / 0, 2)").unwrap().eval(&[]).is_nan());
    assert_eq!(Formula::parse("clamp(a, 0, 1)").unwrap().eval(&[2.5]), 1.0);
    run_one("formula", &seed("formula", "crash-clamp-bounds"));
}

/// An unknown function's column was found by stepping back from its `(` over the name and one
/// byte, but white space may stand between them: with a multibyte space (U+1680) the step landed
/// inside a character and counting the column panicked (with an ASCII space the column was one
/// off). Found by libFuzzer on `formula`; reachable from a rewards config
/// (`formula = "a\u1680(1)"`). Fixed in `engine/formula.rs`: the column is the name's own.
/// Kept: `formula/crash-call-after-a-unicode-space`.
#[test]
fn r16_an_unknown_function_with_white_space_before_its_parenthesis() {
    use reward_server::engine::formula::Formula;
    for (text, column) in [("a\u{1680}(1)", 1), ("1 + sqrt (a)", 5), ("sqrt\t(a)", 1)] {
        let e = Formula::parse(text).unwrap_err();
        assert!(e.message.starts_with("unknown function") && e.column == column, "{text:?}: {e}");
    }
    run_one("formula", &seed("formula", "crash-call-after-a-unicode-space"));
    let config = "[rewards.e]\nplugin = \"echo\"\n[rewards.c]\ncomponents = { e = \"e\" }\nformula = \"e\\u1680(1)\"\n";
    run_one("rewards_config", config.as_bytes());
}

/// The direct reader of a record (`input::parse_record`, every door's) read a message written as
/// a JSON list by position (`["assistant", "4"]`: a derived struct accepts a list), where the
/// `Value` reader it is documented to agree with refuses it ("expected {role, content}, found a
/// list"). Found by libFuzzer on `lambda` (`{"messages": [["assistant"]]}` was a rollout). Fixed
/// in `input.rs`: a message is read as a map only. Kept: `lambda/crash-message-as-a-list`.
#[test]
fn r16_a_message_written_as_a_list_is_refused() {
    for record in [r#"{"messages": [["assistant", "4"]]}"#, r#"{"id": "x", "messages": [["assistant"]]}"#] {
        let err = reward_server::input::parse_record(record, "fb").unwrap_err();
        assert!(err.error.0.contains("messages[0]: expected {role, content}, found a list"), "{err:?}");
    }
    run_one("lambda", &seed("lambda", "crash-message-as-a-list"));
}

/// A chain of composite rewards was loaded, scored and dropped by recursion, one level per
/// reward, without a bound: 2,000 levels (a 110 KB config) overflowed a 2 MiB stack (the thread
/// a reload runs on) and aborted the server; named so that the loader went bottom up, the chain
/// loaded and the first rollout or the next reload overflowed instead. Found while writing the
/// config target (the mutations do not build such chains), confirmed by running it. Fixed in
/// `config.rs`: rewards nest at most `MAX_REWARD_DEPTH` (64) levels, refused at load.
#[test]
fn r16_a_long_chain_of_components_is_refused_on_a_small_stack() {
    let ok = component_chain(63, false);
    let rewards = reward_server::config::Rewards::from_toml(fixture().host(), &ok, fixture().dir()).unwrap();
    assert_eq!(rewards.iter().count(), 64);
    std::thread::scope(|s| {
        let on_reload_stack = std::thread::Builder::new().stack_size(2 << 20);
        on_reload_stack
            .spawn_scoped(s, || {
                for bottom_first in [false, true] {
                    let text = component_chain(3000, bottom_first);
                    let err = reward_server::config::Rewards::from_toml(fixture().host(), &text, fixture().dir()).unwrap_err();
                    assert!(format!("{err:#}").contains("rewards nest deeper than 64 levels"), "{err:#}");
                    run_one("rewards_config", text.as_bytes());
                }
                run_one("rewards_config", &seed("rewards_config", "crash-component-chain"));
                run_one("rewards_config", &seed("rewards_config", "crash-component-chain-bottom-first"));
            })
            .unwrap()
            .join()
            .unwrap();
    });
}

/// `input::parse_record` is documented to give exactly what reading the record as a `Value`
/// and calling `to_rollout` gives, but its direct reader skipped a message's other keys without
/// reading them, so a lone surrogate escape there (`"\ud800"`, which serde_json refuses when it
/// reads a string) was accepted while the `Value` reader refused the record as not JSON. Found by
/// libFuzzer on `lambda`. Fixed in `input.rs`: a message's other keys are read through (`Checked`,
/// which decodes strings and keeps nothing). Kept: `lambda/crash-lone-surrogate-in-a-message-key`.
#[test]
fn r16_a_lone_surrogate_in_a_message_key_the_direct_reader_skips() {
    let record = r#"{"messages": [{"role": "assistant", "content": "x", "other": "\ud800"}]}"#;
    assert!(serde_json::from_str::<serde_json::Value>(record).is_err(), "serde_json refuses the text as a value");
    let direct = reward_server::input::parse_record(record, "fb");
    assert!(direct.is_err(), "the direct reader should refuse it as the Value reader does: {direct:?}");
}

/// A composite evaluates each of its components, and a component shared by two parents is
/// evaluated once per path, so `depth` levels of composites with two components that are the
/// same reward made one rollout cost 2^depth plugin calls and 2^(depth+1) metrics (16 levels: 2 s
/// and 131,070 metrics per rollout; 30 levels, a 2 KB config: years), and nothing capped it at
/// load. Found by fuzzing (`rewards_config/shared-components-10`). Fixed in `config.rs`: the
/// plugin calls one rollout of a reward costs, sharing counted, are capped at load
/// (`MAX_PLUGIN_USES`, 256); 8 levels (256 calls) load and score, 9 and 20 are refused, naming
/// the first reward over the cap and its count.
#[test]
fn r16_shared_components_are_evaluated_once_per_path() {
    for depth in [9, 20] {
        let err = reward_server::config::Rewards::from_toml(fixture().host(), &shared_components(depth), fixture().dir()).unwrap_err();
        // The first reward over the cap is the one 9 levels above the plugin.
        let expected = format!("reward `d{:03}`: one rollout would cost 512 plugin calls, more than the 256 allowed", depth - 9);
        assert!(format!("{err:#}").contains(&expected), "{err:#}");
    }
    let rewards = reward_server::config::Rewards::from_toml(fixture().host(), &shared_components(8), fixture().dir()).unwrap();
    let scored = rewards.get("d000").unwrap().score_batch(&[reward_server::engine::Rollout {
        id: "r".into(),
        messages: vec![reward_server::engine::Message { role: "assistant".into(), content: "hello".into() }],
        reference: "null".into(),
        metadata: "{}".into(),
        group: None,
    }]);
    assert_eq!(scored[0].status, reward_server::engine::Status::Ok, "{:?}", scored[0].error);
    run_one("rewards_config", &seed("rewards_config", "shared-components-10"));
}

mod seeds {
    use std::path::Path;

    use prost::Message as _;
    use reward_proto::v1 as pb;

    fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
        let dir = dir.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn message(role: &str, content: &str) -> pb::Message {
        pb::Message { role: role.into(), content: content.into() }
    }

    fn rollout(id: &str, messages: Vec<pb::Message>, completion: &str) -> pb::Rollout {
        pb::Rollout { id: id.into(), messages, completion: completion.into(), ..Default::default() }
    }

    pub fn write_all(dir: &Path) {
        // gRPC: the adapter's cases from `server/grpc.rs`'s tests, and the shapes the gRPC tests send.
        let requests = [
            ("completion-only", vec![rollout("r", vec![], "4")]),
            ("prompt-and-completion", vec![rollout("r", vec![message("user", "2+2?")], "4")]),
            ("answer-last", vec![rollout("r", vec![message("user", "q"), message("assistant", "4")], "")]),
            ("nova-answer-and-completion", vec![rollout("r", vec![message("user", "q"), message("nova_assistant", "4")], "4")]),
            ("two-answers", vec![rollout("r", vec![message("user", "q"), message("assistant", "5")], "4")]),
            ("no-answer", vec![rollout("r", vec![message("user", "q")], "")]),
            ("empty", vec![rollout("", vec![], "")]),
            (
                "json-fields",
                vec![pb::Rollout {
                    id: "j".into(),
                    messages: vec![message("user", "q")],
                    completion: "<answer>4</answer>".into(),
                    reference_json: r#"{"answer": "4"}"#.into(),
                    metadata_json: r#"{"task": "math"}"#.into(),
                    ..Default::default()
                }],
            ),
            (
                "bad-json-fields",
                vec![
                    pb::Rollout { id: "a".into(), completion: "x".into(), reference_json: "{".into(), ..Default::default() },
                    pb::Rollout { id: "b".into(), completion: "x".into(), metadata_json: "[1,".into(), ..Default::default() },
                    pb::Rollout { id: "c".into(), completion: "x".into(), reference_json: "  ".into(), ..Default::default() },
                ],
            ),
            (
                "record-json",
                vec![
                    pb::Rollout {
                        record_json:
                            r#"{"id": "n", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "4"}]}"#.into(),
                        ..Default::default()
                    },
                    pb::Rollout { id: "p".into(), record_json: r#"{"prompt": "q", "completion": "4"}"#.into(), ..Default::default() },
                    pb::Rollout { id: "cut".into(), record_json: r#"{"id": "cut", "mess"#.into(), ..Default::default() },
                    pb::Rollout { id: "both".into(), completion: "x".into(), record_json: "{}".into(), ..Default::default() },
                ],
            ),
            ("many", (0..8).map(|i| rollout(&format!("w{i}"), vec![], "work 100")).collect()),
        ];
        for (name, rollouts) in requests {
            let request = pb::ScoreRequest { reward: "echo".into(), rollouts };
            write(dir, "grpc", name, &request.encode_to_vec());
        }
        write(dir, "grpc", "nothing", b"");

        // Guest answers, in the reader's terms (see `fuzz_targets::guest_answer`): the limits (0:
        // the defaults), the result count (2: one), then per item its kind (0: a score, 5:
        // invalid-input, 6: failed) and fields. A number `2, b` is b / 4 - 8; a short text is
        // `0, n` and n bytes (each b % 95 + 32). A last `3, n, pos, pos, byte` overwrites bytes.
        let metrics_and_reason: &[u8] =
            &[0, 2, 0, 2, 40, 2, 0, 3, 65, 66, 67, 2, 36, 0, 0, 3, 88, 89, 90, 2, 32, 1, 4, 0, 5, 87, 72, 89, 1, 31];
        let answers: Vec<(&str, Vec<u8>)> = vec![
            ("score", vec![0, 2, 0, 2, 40, 0, 0]),
            ("score-metrics-reason", metrics_and_reason.to_vec()),
            ("invalid-input", vec![0, 2, 5, 0, 6, 78, 79, 0, 82, 69, 70]),
            ("failed", vec![0, 2, 6, 1, 0, 4, 79, 79, 80, 83]),
            ("nan", vec![0, 2, 0, 1, 0, 0, 0]),
            ("long-reason", vec![0, 2, 0, 2, 40, 0, 4, 3, 8]),
            ("long-reason-over", vec![0, 2, 0, 2, 40, 0, 4, 3, 9]),
            ("long-error", vec![0, 2, 6, 1, 3, 7]),
            ("two-results", vec![0, 1, 0, 2, 40, 0, 0, 5, 0, 0]),
            ("no-results", vec![0, 0]),
            ("bad-tag", vec![0, 2, 7, 9]),
            ("bad-utf8", vec![0, 2, 5, 0x80, 4, 65, 66, 67, 68, 2]),
            // At most 1 metric and 8 bytes of reason: this one has 2 metrics.
            ("small-caps", [&[0b0001_0011], &metrics_and_reason[1..]].concat()),
            // An address overwritten: out of bounds.
            ("overwritten", [metrics_and_reason, &[3, 0, 0, 24, 0xff]].concat()),
        ];
        for (name, bytes) in answers {
            write(dir, "guest_answer", name, &bytes);
        }

        // Crashes found (see the `r16_` tests) and inputs near them.
        write(dir, "formula", "crash-clamp-bounds", b"\x0eclamp(a * 3, a, 1)");
        write(dir, "formula", "crash-call-after-a-unicode-space", b"\ta\xe1\x9a\x80(\x9aa\t\xe1-a\x80-<=(a");
        write(
            dir,
            "lambda",
            "crash-message-as-a-list",
            b"{\"messages\":\r\r\r\r\r[\n\r\r\r\r[\n\r\n\"assistant\"\n\r\n]\r\n\n\r\n]\r\r\r}",
        );
        write(dir, "openrlhf", "a-list-body", b"[[]]");
        write(dir, "openrlhf", "a-list-body-with-prompts", br#"[["q a"], ["q "]]"#);
        write(dir, "formula", "crash-char-boundary", format!("\0a{}", "é".repeat(2048)).as_bytes());
        let formula = format!(
            "[rewards.length]\nplugin = \"echo\"\n[rewards.c]\ncomponents = {{ a = \"length\" }}\nformula = \"a{}\"\n",
            "é".repeat(2048)
        );
        write(dir, "rewards_config", "crash-formula-char-boundary", formula.as_bytes());
        write(dir, "rewards_config", "crash-component-chain", super::component_chain(2500, false).as_bytes());
        write(dir, "rewards_config", "crash-component-chain-bottom-first", super::component_chain(2500, true).as_bytes());
        write(dir, "rewards_config", "component-chain-63", super::component_chain(63, true).as_bytes());
        write(dir, "rewards_config", "shared-components-10", super::shared_components(10).as_bytes());
        let surrogate = br#"[{"id": "a", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "cnullontent": "4\u0000\ud800", "extra": 1}], "task": "m"}]"#;
        write(dir, "lambda", "crash-lone-surrogate-in-a-message-key", surrogate);
        write(
            dir,
            "openrlhf",
            "crash-lone-surrogate-in-an-unknown-key",
            br#"{"query": ["q a", "q b"], "prompti": ["\ud800q "], "labels": [{"answer": 1}, null]}"#,
        );
    }
}
