use std::time::Instant;
use reward_server::engine::{HostBuilder, Limits, Message, Rollout};
fn r(c: &str) -> Rollout { Rollout { id: "x".into(), messages: vec![Message{role:"user".into(),content:"q".into()}, Message{role:"assistant".into(),content:c.into()}], completion: c.into(), reference: r#"{"answer":"12.5%"}"#.into(), metadata: "{}".into() } }
fn main() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned();
    let host = HostBuilder::new().cache_dir(Some(root.join("target/test-artifact-cache"))).build().unwrap();
    let guest = host.load_file(&root.join("target/plugins/limits-guest.wasm")).unwrap();
    let format = host.load_file(&root.join("target/plugins/format.wasm")).unwrap();
    let reuse = Limits { instance_reuse: u32::MAX, ..Limits::default() };
    let fresh = Limits { instance_reuse: 1, ..Limits::default() };
    let tiny: Vec<Rollout> = (0..64).map(|_| r("a")).collect();
    let big = format!("<think>{}</think><answer>12.5%</answer>", "word ".repeat(390));
    let bigs: Vec<Rollout> = (0..64).map(|_| r(&big)).collect();
    let cfg = r#"{"required_tags": ["think", "answer"], "answer_tag": "answer", "reference": {"mode": "numeric"}}"#;
    for (name, p, cfg, rs, lim) in [("guest tiny reuse", &guest, "{}", &tiny, &reuse), ("guest tiny fresh", &guest, "{}", &tiny, &fresh),
        ("guest 2k reuse", &guest, "{}", &bigs, &reuse), ("format tiny reuse", &format, cfg, &tiny, &reuse), ("format 2k reuse", &format, cfg, &bigs, &reuse), ("format 2k fresh", &format, cfg, &bigs, &fresh)] {
        p.score(cfg, rs, lim);
        let n = 200; let t = Instant::now();
        for _ in 0..n { p.score(cfg, rs, lim); }
        let per = t.elapsed().as_secs_f64() / (n * 64) as f64 * 1e6;
        let o = p.score(cfg, &rs[..1], lim);
        println!("{name}: {per:.2} us/rollout, instructions {}", o[0].instructions);
    }
    let one = &bigs[..1];
    let t = Instant::now(); for _ in 0..200 { format.score(cfg, one, &fresh); } println!("format fresh single: {:.1} us", t.elapsed().as_secs_f64()/200.0*1e6);
}
