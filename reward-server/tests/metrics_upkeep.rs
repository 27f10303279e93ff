//! The metrics recorder's memory stays bounded when nobody scrapes `/metrics`: histogram samples
//! are folded into buckets by the upkeep thread. Without it every sample stays in memory (8 bytes
//! each) until the next scrape: a server at 56k rollouts/s nobody scraped grew 130 MB in two
//! minutes. Its own test binary, so no other test's allocations move the resident size.

use std::time::Duration;

use reward_server::server::metrics;

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib << 10
}

#[test]
fn histogram_samples_do_not_pile_up_unscraped() {
    let _handle = metrics::install_with_upkeep(Duration::from_millis(20));
    // Warm up the series and the allocator's pools.
    for _ in 0..200_000 {
        ::metrics::histogram!(metrics::INSTRUCTIONS, "reward" => "upkeep-test").record(1e6);
    }
    std::thread::sleep(Duration::from_millis(100));
    let before = resident_bytes();
    // 4M samples are 32 MiB held raw; recorded in bursts a little slower than the upkeep.
    for _ in 0..40 {
        for _ in 0..100_000 {
            ::metrics::histogram!(metrics::INSTRUCTIONS, "reward" => "upkeep-test").record(1e6);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    std::thread::sleep(Duration::from_millis(100));
    let grown = resident_bytes().saturating_sub(before);
    assert!(grown < 12 << 20, "resident memory grew {} MiB over 4M unscraped samples", grown >> 20);
}
