//! The README's walkthrough is what the launcher prints: every ```console block's `$ rft-launch
//! ...` command is run from the crate's directory, and each line shown after it (`...` skips
//! lines) must appear in its output (stdout, then stderr), in order.

use std::path::PathBuf;
use std::process::Command;

fn blocks(readme: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```console") => current = Some(Vec::new()),
            (Some(_), "```") => out.push(current.take().unwrap()),
            (Some(b), l) => b.push(l.to_owned()),
            _ => {}
        }
    }
    out
}

#[test]
fn the_walkthrough_is_what_the_launcher_prints() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut commands = 0;
    for block in blocks(&readme) {
        let mut i = 0;
        while i < block.len() {
            let cmd = block[i].strip_prefix("$ rft-launch ").unwrap_or_else(|| panic!("a block starts with a command: {}", block[i]));
            let mut expected = Vec::new();
            i += 1;
            while i < block.len() && !block[i].starts_with("$ ") {
                expected.push(block[i].clone());
                i += 1;
            }
            let out = Command::new(env!("CARGO_BIN_EXE_rft-launch"))
                .current_dir(&dir)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", &dir)
                .args(cmd.split(' '))
                .output()
                .unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let lines: Vec<&str> = text.lines().collect();
            let mut at = 0;
            for want in expected.iter().filter(|l| l.as_str() != "...") {
                match lines[at..].iter().position(|l| l == want) {
                    Some(p) => at += p + 1,
                    None => panic!("`rft-launch {cmd}` does not print, where the README shows it:\n{want}\n--- it printed:\n{text}"),
                }
            }
            // A block shown without `...` around it is the whole output.
            if !expected.iter().any(|l| l == "...") {
                assert_eq!(lines, expected.iter().map(String::as_str).collect::<Vec<_>>(), "`rft-launch {cmd}`");
            }
            commands += 1;
        }
    }
    assert!(commands >= 5, "the walkthrough has a block per job kind");
}
