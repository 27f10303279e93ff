//! TLS and mutual TLS (rustls, ring) for both listeners, from PEM files that are re-read when they
//! change, so a renewed certificate (a Kubernetes Secret from cert-manager) reaches new connections
//! without a restart. Files that turn unreadable or invalid keep the previous config.
//!
//! Both listeners accept through the same loop ([`TlsListener`]): each connection's handshake uses
//! the config current when it was accepted, and connections already open keep theirs. gRPC does
//! not use tonic's built-in TLS, whose config is fixed when the server is built.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::pem::PemObject};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};

/// How long a client may take to finish the TLS handshake: 10 s.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN of the HTTP listener: HTTP/2 or HTTP/1.1.
const HTTP_ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN of the gRPC listener: HTTP/2 only, as tonic's own TLS offers.
const GRPC_ALPN: &[&[u8]] = &[b"h2"];

/// PEM files for TLS.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading TLS {what} {}", path.display()))
}

impl TlsFiles {
    /// rustls's server config, offering `alpn`.
    fn rustls_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ServerConfig>> {
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(&read(&self.cert, "certificate")?)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing TLS certificate {}", self.cert.display()))?;
        anyhow::ensure!(!certs.is_empty(), "TLS certificate {} holds no certificate", self.cert.display());
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&read(&self.key, "key")?)
            .with_context(|| format!("parsing TLS key {}", self.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&read(ca, "client CA")?) {
                    roots.add(cert.with_context(|| format!("parsing client CA {}", ca.display()))?)?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .with_context(|| format!("client CA {}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(certs, key).context("TLS certificate and key do not match")?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// The files' (modified, length), in the order cert, key, client CA.
    fn stamps(&self) -> Vec<Option<(SystemTime, u64)>> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()].into_iter().flatten().map(|p| stamp_of(p)).collect()
    }
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())))
}

/// The TLS configs of both listeners, rebuilt from the [`TlsFiles`] when they change.
#[derive(Debug)]
pub struct Tls {
    files: TlsFiles,
    http: Arc<ArcSwap<rustls::ServerConfig>>,
    grpc: Arc<ArcSwap<rustls::ServerConfig>>,
    /// The files' stamps when they were last read.
    stamps: Mutex<Vec<Option<(SystemTime, u64)>>>,
}

impl Tls {
    /// Reads the files once; fails if they do not make a config.
    pub fn load(files: TlsFiles) -> Result<Arc<Tls>> {
        let stamps = files.stamps();
        let http = files.rustls_config(HTTP_ALPN)?;
        let grpc = files.rustls_config(GRPC_ALPN)?;
        Ok(Arc::new(Tls { files, http: Arc::new(ArcSwap::new(http)), grpc: Arc::new(ArcSwap::new(grpc)), stamps: Mutex::new(stamps) }))
    }

    /// Re-reads the files if any changed since the last read. Returns whether the configs were
    /// replaced; files that do not make a config are an error and keep the previous configs (they
    /// are read again on their next change).
    pub fn refresh(&self) -> Result<bool> {
        let now = self.files.stamps();
        let mut stamps = self.stamps.lock().expect("TLS stamps poisoned");
        if now == *stamps {
            return Ok(false);
        }
        *stamps = now;
        let http = self.files.rustls_config(HTTP_ALPN)?;
        let grpc = self.files.rustls_config(GRPC_ALPN)?;
        self.http.store(http);
        self.grpc.store(grpc);
        Ok(true)
    }

    /// Accepts TLS connections for the HTTP listener.
    pub fn http_listener(&self, listener: TcpListener) -> TlsListener {
        TlsListener::new(listener, self.http.clone())
    }

    /// Accepts TLS connections for tonic (`serve_with_incoming`).
    pub fn grpc_incoming(
        &self,
        listener: TcpListener,
    ) -> impl Stream<Item = std::io::Result<tokio_rustls::server::TlsStream<TcpStream>>> + use<> {
        ReceiverStream::new(TlsListener::new(listener, self.grpc.clone()).ready).map(|(tls, _peer)| Ok(tls))
    }
}

/// Re-reads the TLS files every `interval` while `tls` is in use (polling, so it works on every
/// filesystem, Kubernetes Secret mounts included).
pub async fn watch(tls: Weak<Tls>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(tls) = tls.upgrade() else { return };
        match tls.refresh() {
            Ok(true) => tracing::info!("TLS files changed; new connections use the new certificate"),
            Ok(false) => {}
            Err(e) => tracing::warn!("keeping the previous TLS certificate: {e:#}"),
        }
    }
}

/// A TLS listener: accepts TCP connections and completes handshakes in the background, so one slow
/// client never holds up the others. Each handshake uses the config current at its accept.
pub struct TlsListener {
    ready: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener`.
    fn new(listener: TcpListener, config: Arc<ArcSwap<rustls::ServerConfig>>) -> Self {
        let local = listener.local_addr().expect("bound listener has an address");
        let (tx, ready) = mpsc::channel(128);
        tokio::spawn(async move {
            loop {
                // Stop (and close the socket) as soon as the server drops its end.
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = tx.closed() => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::warn!("TCP_NODELAY: {e}");
                }
                let (acceptor, ready) = (TlsAcceptor::from(config.load_full()), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
