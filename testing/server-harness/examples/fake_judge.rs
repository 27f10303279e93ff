//! The scripted judge as a process, for benchmarks run by hand: answers every chat completion with
//! `ANSWER` (default `1`) after `DELAY_MS` (default 0), prints its base URL, and serves until
//! killed.
//!
//!     cargo run --release -p reward-server-harness --example fake_judge -- [ANSWER] [DELAY_MS]

use std::time::Duration;

use reward_server_harness::fake_judge::{FakeJudge, Reply, Script};

fn main() {
    let mut args = std::env::args().skip(1);
    let answer = args.next().unwrap_or_else(|| "1".into());
    let delay: u64 = args.next().map_or(0, |d| d.parse().expect("DELAY_MS must be a whole number of milliseconds"));
    let reply = if delay == 0 { Reply::text(answer) } else { Reply::text(answer).after(Duration::from_millis(delay)) };
    let judge = FakeJudge::start(Script::new(reply));
    println!("{}", judge.url());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
