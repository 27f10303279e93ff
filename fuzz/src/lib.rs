//! What the libFuzzer drivers share: the fixture of `reward_server::fuzz_targets`, built once per
//! process, and the lookup of a target by name.

use std::sync::OnceLock;

use reward_server::fuzz_targets::{ECHO_GUEST_WAT, Fixture, TARGETS};

/// Runs the target `name` on one input.
pub fn run(name: &str, data: &[u8]) {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    let fixture = FIXTURE.get_or_init(|| {
        let guest = wat::parse_str(ECHO_GUEST_WAT).expect("the echo guest assembles");
        Fixture::new(&guest).expect("building the fuzz fixture")
    });
    let target = TARGETS.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no fuzz target `{name}`")).1;
    target(fixture, data);
}
