//! TLS and mutual TLS on both listeners, with certificates made by `openssl` and checked by real
//! clients: `curl` for HTTPS, tonic for gRPC.

mod common;

use std::path::Path;
use std::process::Command;

use common::repo_root;
use common::server::Server;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, both signed by it.
fn make_certs(dir: &Path) {
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca"]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &format!("{who}.key"), "-out", &format!("{who}.csr"), "-subj", &format!("/CN={who}")]);
        openssl(
            dir,
            &["x509", "-req", "-in", &format!("{who}.csr"), "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &format!("{who}.pem"), "-days", "2", "-extfile", &format!("{who}.ext")],
        );
    }
}

/// `curl` against the server; returns (exit code, body).
fn curl(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new("curl").current_dir(dir).args(["-sS", "--max-time", "10"]).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

const EVENT: &str = r#"[{"id":"t1","messages":[{"role":"assistant","content":"<think>x</think><answer>4</answer>"}],"reference_answer":4}]"#;

#[tokio::test]
async fn https_and_grpc_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    let server = Server::start(
        &repo_root().join("rewards.toml"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
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
