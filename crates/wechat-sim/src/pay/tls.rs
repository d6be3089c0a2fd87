//! Mutual TLS for `/secapi` (§4.7): the simulator's own CA and server certificate, merchants'
//! client CAs, and the TLS listener.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::{MerchantConfig, PayState};
use crate::state::Sim;

/// `return_msg` for a `/secapi` call without a client certificate.
const NO_CERT: &str =
    "请求需要双向证书：未携带商户API证书（请通过TLS端口并使用商户API证书调用/secapi接口）";

/// `return_msg` for a certificate that the merchant's CA did not sign.
const WRONG_CERT: &str = "证书与商户号不匹配：商户API证书校验失败";

/// `return_msg` when the merchant's `client_ca` could not be loaded.
const CA_UNUSABLE: &str = "商户API证书校验失败：模拟器无法读取该商户的client_ca";

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider (ring), explicit so that no process-wide default is needed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The simulator's CA and the server certificate it signed, generated at start.
pub(crate) struct ServerTls {
    /// The CA certificate, PEM, served at `/_sim/tls/server-ca.pem`.
    pub(crate) ca_pem: String,
    /// Server certificate then CA certificate.
    chain: Vec<CertificateDer<'static>>,
    /// The server key, PKCS#8 DER.
    key_der: Vec<u8>,
}

impl ServerTls {
    /// Makes a CA and a server certificate for `localhost`, `127.0.0.1` and `::1` signed by it.
    pub(crate) fn generate() -> Result<Self, rcgen::Error> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "wechat-sim local CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;

        let key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])?;
        leaf.distinguished_name
            .push(DnType::CommonName, "wechat-sim");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
            key_der: key.serialize_der(),
        })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key_der.clone()).into()
    }
}

/// A merchant's client CA: its certificates and a verifier for certificates it signed.
pub(crate) struct ClientCa {
    roots: Vec<CertificateDer<'static>>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl ClientCa {
    /// Reads the PEM CA file at `path`.
    pub(crate) fn load(path: &str) -> Result<Self, String> {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let roots: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{path} is not a PEM file: {e}"))?;
        let mut store = RootCertStore::empty();
        for root in &roots {
            store
                .add(root.clone())
                .map_err(|e| format!("{path}: unusable CA certificate: {e}"))?;
        }
        if store.is_empty() {
            return Err(format!("{path} holds no certificate"));
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider())
            .build()
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(Self { roots, verifier })
    }
}

/// The client certificate chain of a request that came over the TLS listener (a request
/// extension; absent on the plain listener).
#[derive(Debug, Clone)]
pub(crate) struct TlsPeer {
    chain: Arc<Vec<CertificateDer<'static>>>,
}

/// Whether a `/secapi` request of `merchant` may proceed: always when it has no `client_ca`,
/// otherwise only over TLS with a certificate its CA signed. The error is the `return_msg`.
pub(crate) fn check_client_cert(
    pay: &PayState,
    merchant: &MerchantConfig,
    peer: Option<&TlsPeer>,
) -> Result<(), &'static str> {
    if merchant.client_ca.is_empty() {
        return Ok(());
    }
    let Some(Ok(ca)) = pay.client_cas.get(&merchant.mch_id) else {
        return Err(CA_UNUSABLE);
    };
    let Some((end_entity, intermediates)) = peer.and_then(|p| p.chain.split_first()) else {
        return Err(NO_CERT);
    };
    ca.verifier
        .verify_client_cert(end_entity, intermediates, UnixTime::now())
        .map(|_| ())
        .map_err(|_| WRONG_CERT)
}

/// The TLS configuration: the generated server certificate; when any merchant has a
/// `client_ca`, a client certificate signed by one of them is required.
fn server_config(pay: &PayState) -> io::Result<rustls::ServerConfig> {
    let tls = pay
        .server_tls
        .as_ref()
        .ok_or_else(|| io::Error::other("the TLS server certificate could not be generated"))?;
    let mut roots = RootCertStore::empty();
    for (mch_id, ca) in &pay.client_cas {
        let ca = ca
            .as_ref()
            .map_err(|e| io::Error::other(format!("merchant {mch_id}: client_ca: {e}")))?;
        for root in &ca.roots {
            roots
                .add(root.clone())
                .map_err(|e| io::Error::other(format!("merchant {mch_id}: client_ca: {e}")))?;
        }
    }
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?;
    let builder = if roots.is_empty() {
        builder.with_no_client_auth()
    } else {
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(io::Error::other)?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(tls.chain.clone(), tls.key())
        .map_err(io::Error::other)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves the simulator over TLS on `listener` (for `/secapi` with client certificates; every
/// other route answers too) until `shutdown` turns true; returns early only when the TLS
/// configuration cannot be built (no server certificate, an unreadable `client_ca`).
///
/// # Errors
/// When the TLS configuration cannot be built.
pub(crate) async fn spawn_tls(
    sim: Arc<Sim>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(&sim.pay)?));
    let app = crate::serve::with_simulated_date(
        crate::router::router(Arc::clone(&sim)),
        Arc::clone(&sim),
    );
    drop(sim);
    let for_connections = shutdown.clone();
    let mut connections = JoinSet::new();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "TLS accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            () = crate::serve::stopped(&mut shutdown) => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let shutdown = for_connections.clone();
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::info!(%remote, error = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let chain: Vec<CertificateDer<'static>> = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            let peer = TlsPeer {
                chain: Arc::new(chain),
            };
            crate::serve::serve_connection(tls, remote, true, peer, app, shutdown).await;
        });
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_certificate_is_generated() {
        let tls = ServerTls::generate().expect("rcgen works");
        assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(tls.chain.len(), 2);
        let pay =
            PayState::new(&crate::config::SimConfig::from_toml_str("").expect("empty config"));
        assert!(server_config(&pay).is_ok());
    }

    #[test]
    fn missing_client_ca_is_reported() {
        let err = ClientCa::load("/nonexistent/ca.pem").err().expect("fails");
        assert!(err.contains("/nonexistent/ca.pem"));
    }
}
