//! TLS and mutual TLS on both listeners, with certificates made by `openssl` and checked by real
//! clients: `curl` for HTTPS, tonic for gRPC; and certificates rotated under a running server.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::repo_root;
use common::server::Server;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, both signed by it.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca"],
    );
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{who}.key"),
                "-out",
                &format!("{who}.csr"),
                "-subj",
                &format!("/CN={who}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{who}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{who}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{who}.ext"),
            ],
        );
    }
}

/// `curl` against the server; returns (exit code, body).
fn curl(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("curl").current_dir(dir).args(["-sS", "--max-time", "10"]).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

const EVENT: &str =
    r#"[{"id":"t1","messages":[{"role":"assistant","content":"<think>x</think><answer>4</answer>"}],"reference_answer":4}]"#;

#[tokio::test]
async fn https_and_grpc_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let server =
        Server::start(&repo_root().join("rewards.toml"), &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert!(server.http.starts_with("https://"), "{}", server.http);
    let (code, body) = curl(dir.path(), &["--cacert", "ca.pem", &format!("{}/healthz", server.http)]);
    assert_eq!((code, body.as_str()), (0, "ok"));
    let (code, body) = curl(
        dir.path(),
        &["--cacert", "ca.pem", "-H", "content-type: application/json", "-d", EVENT, &format!("{}/v1/rewards/math/lambda", server.http)],
    );
    assert_eq!(code, 0);
    assert!(body.contains("\"aggregate_reward_score\":1.0"), "{body}");
    // Without the CA the certificate is not trusted; plain HTTP is not spoken.
    assert_ne!(curl(dir.path(), &[&format!("{}/healthz", server.http)]).0, 0);
    assert_ne!(curl(dir.path(), &[&format!("{}/healthz", server.http.replace("https://", "http://"))]).0, 0);

    let ca = tonic::transport::Certificate::from_pem(std::fs::read(dir.path().join("ca.pem")).unwrap());
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(ca).domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(server.grpc.replace("http://", "https://"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = reward_proto::v1::reward_service_client::RewardServiceClient::new(channel);
    let list = client.list_rewards(reward_proto::v1::ListRewardsRequest {}).await.unwrap().into_inner();
    assert!(list.rewards.iter().any(|r| r.name == "math"));
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let p = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    let server = Server::start(
        &repo_root().join("rewards.toml"),
        &["--tls-cert", &p("server.pem"), "--tls-key", &p("server.key"), "--tls-client-ca", &p("ca.pem")],
    );
    let url = format!("{}/healthz", server.http);
    assert_ne!(curl(dir.path(), &["--cacert", "ca.pem", &url]).0, 0, "no client certificate must be refused");
    let (code, body) = curl(dir.path(), &["--cacert", "ca.pem", "--cert", "client.pem", "--key", "client.key", &url]);
    assert_eq!((code, body.as_str()), (0, "ok"));
}

/// How often the rotation tests' servers check their files.
const WATCH_MS: &str = "100";

/// Replaces `to` with `from`'s bytes as an atomic rename (as the kubelet swaps a Secret volume).
fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// Waits up to 10 s for `check` to hold.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A new gRPC connection that trusts only `ca`, if the handshake succeeds.
async fn grpc_connect(grpc: &str, ca: &Path) -> Option<tonic::transport::Channel> {
    let ca = tonic::transport::Certificate::from_pem(std::fs::read(ca).unwrap());
    let tls = tonic::transport::ClientTlsConfig::new().ca_certificate(ca).domain_name("localhost");
    let endpoint = tonic::transport::Channel::from_shared(grpc.replace("http://", "https://")).unwrap().tls_config(tls).unwrap();
    endpoint.connect_timeout(Duration::from_secs(5)).connect().await.ok()
}

async fn lists_rewards(channel: tonic::transport::Channel) -> bool {
    let mut client = reward_proto::v1::reward_service_client::RewardServiceClient::new(channel);
    client.list_rewards(reward_proto::v1::ListRewardsRequest {}).await.is_ok()
}

/// A new gRPC connection that trusts only `ca` lists the rewards.
async fn grpc_lists_rewards(grpc: &str, ca: &Path) -> bool {
    match grpc_connect(grpc, ca).await {
        Some(channel) => lists_rewards(channel).await,
        None => false,
    }
}

/// The subject of the certificate a new connection to `addr` (`127.0.0.1:PORT`) is shown.
fn served_subject(addr: &str) -> String {
    let out = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-connect", addr, "-servername", "localhost"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().find_map(|l| l.strip_prefix("subject=")).unwrap_or_default().replace(' ', "")
}

#[tokio::test]
async fn a_rotated_certificate_reaches_new_connections_and_a_broken_one_keeps_the_last() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make_certs(old.path());
    make_certs(new.path());
    // The new certificate: another CA, another subject.
    openssl(new.path(), &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=rotated"]);
    openssl(
        new.path(),
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    let live = tempfile::tempdir().unwrap();
    let (cert, key) = (live.path().join("tls.crt"), live.path().join("tls.key"));
    replace(&old.path().join("server.pem"), &cert);
    replace(&old.path().join("server.key"), &key);
    let server = Server::start(
        &repo_root().join("rewards.toml"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap(), "--watch-interval-ms", WATCH_MS],
    );
    let healthz = format!("{}/healthz", server.http);
    let grpc_addr = server.grpc.trim_start_matches("http://").to_owned();
    let trusting = |dir: &Path| curl(dir, &["--cacert", "ca.pem", &healthz]).0 == 0;
    assert!(trusting(old.path()) && !trusting(new.path()));
    let before = grpc_connect(&server.grpc, &old.path().join("ca.pem")).await.expect("gRPC with the first certificate");
    assert!(lists_rewards(before.clone()).await);
    assert_eq!(served_subject(&grpc_addr), "CN=server");

    // New connections get the new certificate; one opened before the rotation goes on.
    replace(&new.path().join("server.key"), &key);
    replace(&new.path().join("server.pem"), &cert);
    eventually("HTTPS with the new certificate", || trusting(new.path()));
    assert!(!trusting(old.path()), "a new connection must not see the old certificate");
    assert!(grpc_lists_rewards(&server.grpc, &new.path().join("ca.pem")).await, "gRPC with the new certificate");
    assert!(!grpc_lists_rewards(&server.grpc, &old.path().join("ca.pem")).await);
    assert_eq!(served_subject(&grpc_addr), "CN=rotated");
    assert!(lists_rewards(before).await, "a connection opened before the rotation must go on");

    // Files that do not load (garbage, then a missing key) keep the last good certificate.
    std::fs::write(live.path().join("garbage"), "not a certificate\n").unwrap();
    replace(&live.path().join("garbage"), &cert);
    std::thread::sleep(Duration::from_millis(500));
    assert!(trusting(new.path()), "a broken certificate file must keep the last good one");
    std::fs::remove_file(&key).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(trusting(new.path()), "a missing key must keep the last good certificate");
    assert!(grpc_lists_rewards(&server.grpc, &new.path().join("ca.pem")).await);
    // Once the files load again, they are used.
    replace(&old.path().join("server.key"), &key);
    replace(&old.path().join("server.pem"), &cert);
    eventually("HTTPS with the restored certificate", || trusting(old.path()));
}

#[tokio::test]
async fn a_rotated_client_ca_is_required_of_new_connections() {
    let (old, new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    make_certs(old.path());
    make_certs(new.path());
    let live = tempfile::tempdir().unwrap();
    let client_ca = live.path().join("ca.crt");
    replace(&old.path().join("ca.pem"), &client_ca);
    let p = |f: &str| old.path().join(f).to_str().unwrap().to_owned();
    let server = Server::start(
        &repo_root().join("rewards.toml"),
        &[
            "--tls-cert",
            &p("server.pem"),
            "--tls-key",
            &p("server.key"),
            "--tls-client-ca",
            client_ca.to_str().unwrap(),
            "--watch-interval-ms",
            WATCH_MS,
        ],
    );
    let url = format!("{}/healthz", server.http);
    // The server's own certificate stays the old CA's; only the client CA rotates.
    let with_client_of = |dir: &Path| {
        let (cert, key) = (dir.join("client.pem"), dir.join("client.key"));
        curl(old.path(), &["--cacert", "ca.pem", "--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap(), &url]).0 == 0
    };
    assert!(with_client_of(old.path()) && !with_client_of(new.path()));
    replace(&new.path().join("ca.pem"), &client_ca);
    eventually("the new client CA", || with_client_of(new.path()));
    assert!(!with_client_of(old.path()), "a client of the old CA must be refused once it rotated");
}
