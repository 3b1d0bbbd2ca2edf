//! TLS and authentication for every connection a node takes or makes.
//!
//! With `--tls-ca`, `--tls-cert` and `--tls-key` a node:
//! - serves gRPC (`Peer`, `Operator`) only to clients that present a certificate signed
//!   by the cluster CA ([`NodeTls::grpc_server_config`]: client authentication is
//!   mandatory), and, with `--tls-allowed-name`, only to certificates that carry one of
//!   those names ([`ClientNameVerifier`] refuses the handshake otherwise);
//! - binds a member's id to its certificate: a peer message is taken only when the
//!   node id it speaks for (`from`) is one of the names in the certificate of the
//!   connection it came on (`PeerService`), and a node calls a peer only if the peer's
//!   server certificate names the peer's id ([`NodeTls::peer_client_config`]);
//! - serves the HTTP API over TLS, where a client certificate is optional: a verified
//!   one authenticates the caller, like the bearer token of `--api-token-file`
//!   (`crate::http`).
//!
//! A certificate's names are its subject's common names and its DNS and IP subject
//! alternative names ([`cert_names`]). Nothing here is a protocol decision: it decides
//! which bytes reach the node at all.
//!
//! Every error names the flag and the file it is about ([`TlsError`]).

mod generate;
mod listener;

pub use generate::{generate_api_token, CertAuthority, GeneratedCert};
pub use listener::{serve_http, ConnInfo, Incoming, TlsConn};

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider every TLS configuration here uses: *ring* (no C toolchain or
/// OpenSSL needed).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A file given by a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileArg {
    /// The flag, as the user typed it (`--tls-cert`).
    pub flag: &'static str,
    /// The file.
    pub path: PathBuf,
}

impl FileArg {
    /// `path` given by `flag`.
    pub fn new(flag: &'static str, path: impl Into<PathBuf>) -> Self {
        FileArg {
            flag,
            path: path.into(),
        }
    }

    fn read(&self) -> Result<Vec<u8>, TlsError> {
        std::fs::read(&self.path).map_err(|e| TlsError::Unreadable {
            file: self.clone(),
            error: e.to_string(),
        })
    }
}

impl fmt::Display for FileArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.flag, self.path.display())
    }
}

/// The three files of a TLS identity under a CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate(s) that peers' certificates must chain to (PEM).
    pub ca: FileArg,
    /// This side's certificate chain, leaf first (PEM).
    pub cert: FileArg,
    /// This side's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: FileArg,
}

/// Why TLS material is unusable. Each variant names the flag and file at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsError {
    /// The file cannot be read.
    Unreadable { file: FileArg, error: String },
    /// The file holds no PEM item of the kind expected (`what`), or a malformed one.
    NoPem { file: FileArg, what: &'static str },
    /// A certificate does not parse, or the CA is not usable as a trust anchor.
    BadCertificate { file: FileArg, error: String },
    /// The private key is not one of the certificate's public key.
    KeyMismatch { cert: FileArg, key: FileArg },
    /// The certificate is not valid under the CA (issuer, dates, key usage), for
    /// `purpose` ("client" or "server").
    NotTrusted {
        cert: FileArg,
        ca: FileArg,
        purpose: &'static str,
        error: String,
    },
    /// The node's certificate does not carry the node's id among its names, so its
    /// peers would refuse it.
    IdNotInCertificate {
        cert: FileArg,
        id: String,
        names: Vec<String>,
    },
    /// The node's id cannot be a TLS server name (a DNS name), which TLS needs to bind
    /// the id to a certificate.
    BadId { id: String },
    /// A token file is empty.
    EmptyToken { file: FileArg },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Unreadable { file, error } => write!(f, "{file}: cannot read: {error}"),
            TlsError::NoPem { file, what } => {
                write!(f, "{file}: no PEM {what} found (expected a \"-----BEGIN ...-----\" block)")
            }
            TlsError::BadCertificate { file, error } => {
                write!(f, "{file}: not a usable certificate: {error}")
            }
            TlsError::KeyMismatch { cert, key } => write!(
                f,
                "{key} is not the private key of {cert} (the public keys differ): give the key \
                 that was generated with that certificate"
            ),
            TlsError::NotTrusted {
                cert,
                ca,
                purpose,
                error,
            } => write!(
                f,
                "{cert} is not valid as a TLS {purpose} certificate under {ca}: {error}"
            ),
            TlsError::IdNotInCertificate { cert, id, names } => write!(
                f,
                "{cert} names {names:?} but not this node's id {id:?} (--id): a node's \
                 certificate must carry its id as a DNS name (`ebbtide certs --node {id}` makes one)"
            ),
            TlsError::BadId { id } => write!(
                f,
                "--id {id:?}: with TLS a node id must be a valid DNS name (letters, digits, \
                 '-' and '.'), as it is checked against the peer's certificate"
            ),
            TlsError::EmptyToken { file } => write!(
                f,
                "{file}: the file is empty; put the API token in it (ebbtide certs writes one)"
            ),
        }
    }
}

impl std::error::Error for TlsError {}

impl From<TlsError> for String {
    fn from(e: TlsError) -> Self {
        e.to_string()
    }
}

fn read_certs(file: &FileArg) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = file.read()?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::NoPem {
            file: file.clone(),
            what: "certificate",
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            file: file.clone(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn read_key(file: &FileArg) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = file.read()?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::NoPem {
        file: file.clone(),
        what: "private key",
    })
}

fn read_roots(file: &FileArg) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(file)? {
        roots.add(cert).map_err(|e| TlsError::BadCertificate {
            file: file.clone(),
            error: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The names a certificate (DER) carries: its subject's common names, then its DNS
/// and IP subject alternative names, in that order. Empty if it does not parse.
pub fn cert_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.push((*d).to_owned()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => names.push(
                        std::net::IpAddr::from(<[u8; 4]>::try_from(*ip).unwrap_or_default())
                            .to_string(),
                    ),
                    16 => names.push(
                        std::net::IpAddr::from(<[u8; 16]>::try_from(*ip).unwrap_or_default())
                            .to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    names.dedup();
    names
}

/// A node's TLS material, loaded and checked once at start.
#[derive(Clone)]
pub struct NodeTls {
    files: TlsFiles,
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    /// `--tls-allowed-name`: a peer's certificate must carry one of these (empty: any
    /// certificate under the CA).
    allowed: Arc<Vec<String>>,
}

impl fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeTls")
            .field("files", &self.files)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl NodeTls {
    /// Loads and checks the files: each parses, the key is the certificate's, the
    /// certificate chains to the CA as a client and as a server certificate, and (for a
    /// node, `id` given) it names the node's id.
    pub fn load(files: &TlsFiles, allowed: &[String], id: Option<&str>) -> Result<Self, TlsError> {
        let roots = Arc::new(read_roots(&files.ca)?);
        let chain = read_certs(&files.cert)?;
        let key = read_key(&files.key)?;
        check_key(chain.clone(), key.clone_key(), &files.cert, &files.key)?;
        let tls = NodeTls {
            files: files.clone(),
            roots,
            chain,
            key: Arc::new(key),
            ca_pem: files.ca.read()?,
            cert_pem: files.cert.read()?,
            key_pem: files.key.read()?,
            allowed: Arc::new(allowed.to_vec()),
        };
        tls.check_trusted(id)?;
        Ok(tls)
    }

    /// The certificate is valid under the CA both ways, and names `id`.
    fn check_trusted(&self, id: Option<&str>) -> Result<(), TlsError> {
        let now = UnixTime::now();
        let (leaf, rest) = self.chain.split_first().expect("read_certs: non-empty");
        let not_trusted = |purpose, e: rustls::Error| TlsError::NotTrusted {
            cert: self.files.cert.clone(),
            ca: self.files.ca.clone(),
            purpose,
            error: e.to_string(),
        };
        let client = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .map_err(|e| TlsError::BadCertificate {
                file: self.files.ca.clone(),
                error: e.to_string(),
            })?;
        client
            .verify_client_cert(leaf, rest, now)
            .map_err(|e| not_trusted("client", e))?;
        let Some(id) = id else { return Ok(()) };
        let names = cert_names(leaf);
        if !names.iter().any(|n| n == id) {
            return Err(TlsError::IdNotInCertificate {
                cert: self.files.cert.clone(),
                id: id.to_owned(),
                names,
            });
        }
        let server_name = ServerName::try_from(id.to_owned())
            .map_err(|_| TlsError::BadId { id: id.to_owned() })?;
        let server = rustls::client::WebPkiServerVerifier::builder_with_provider(
            self.roots.clone(),
            provider(),
        )
        .build()
        .map_err(|e| TlsError::BadCertificate {
            file: self.files.ca.clone(),
            error: e.to_string(),
        })?;
        server
            .verify_server_cert(leaf, rest, &server_name, &[], now)
            .map_err(|e| not_trusted("server", e))?;
        Ok(())
    }

    /// The files this was loaded from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// `--tls-allowed-name`: empty when any certificate under the CA is accepted.
    pub fn allowed_names(&self) -> &[String] {
        &self.allowed
    }

    fn client_verifier(&self, mandatory: bool) -> Arc<dyn ClientCertVerifier> {
        let builder = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider());
        let builder = if mandatory {
            builder
        } else {
            builder.allow_unauthenticated()
        };
        let inner = builder
            .build()
            .expect("the roots were checked when the CA was loaded");
        Arc::new(ClientNameVerifier {
            inner,
            allowed: self.allowed.clone(),
        })
    }

    fn server_config(&self, mandatory: bool, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_client_cert_verifier(self.client_verifier(mandatory))
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .expect("the key was checked against the certificate when loaded");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// The gRPC server's configuration: HTTP/2, a client certificate under the CA (and
    /// with an allowed name) is mandatory.
    pub fn grpc_server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config(true, &[b"h2"])
    }

    /// The HTTP API's configuration: HTTP/1.1; a client certificate is optional, and
    /// when one is presented it must be under the CA (and carry an allowed name).
    pub fn http_server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server_config(false, &[b"http/1.1"])
    }

    /// How this node calls peer `node` over gRPC: it presents its own certificate, and
    /// requires the peer's to be under the CA and to name `node`.
    pub fn peer_client_config(&self, node: &str) -> tonic::transport::ClientTlsConfig {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(node)
    }
}

/// TLS to etcd: etcd's certificate must chain to `ca` and name the host of the
/// endpoint's URL; `identity` (certificate, key) is presented when etcd asks for a
/// client certificate (`--client-cert-auth`). The files are checked here.
pub fn etcd_client_config(
    ca: &FileArg,
    identity: Option<(&FileArg, &FileArg)>,
) -> Result<tonic::transport::ClientTlsConfig, TlsError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    read_roots(ca)?;
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca.read()?));
    if let Some((cert, key)) = identity {
        let chain = read_certs(cert)?;
        let k = read_key(key)?;
        check_key(chain, k, cert, key)?;
        config = config.identity(Identity::from_pem(cert.read()?, key.read()?));
    }
    Ok(config)
}

/// The key is the certificate's.
fn check_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_file: &FileArg,
    key_file: &FileArg,
) -> Result<(), TlsError> {
    rustls::sign::CertifiedKey::from_der(chain, key, &provider())
        .map(drop)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                cert: cert_file.clone(),
                key: key_file.clone(),
            },
            _ => TlsError::NoPem {
                file: key_file.clone(),
                what: "private key of a supported type (ECDSA P-256/P-384, Ed25519 or RSA)",
            },
        })
}

/// The CA's verifier, plus `--tls-allowed-name`: a certificate under the CA that
/// carries none of the allowed names is refused during the handshake (and logged).
#[derive(Debug)]
pub struct ClientNameVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Arc<Vec<String>>,
}

impl ClientCertVerifier for ClientNameVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
            .inspect_err(|e| {
                tracing::warn!(names = ?cert_names(end_entity), error = %e, "refused a client certificate: not valid under the cluster CA (--tls-ca)");
            })?;
        if self.allowed.is_empty() {
            return Ok(verified);
        }
        let names = cert_names(end_entity);
        if names.iter().any(|n| self.allowed.contains(n)) {
            Ok(verified)
        } else {
            tracing::warn!(?names, allowed = ?self.allowed, "refused a client certificate: none of its names is allowed (--tls-allowed-name)");
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A client's TLS settings for the HTTP API (the CLI's `--ca`, `--cert`, `--key`):
/// the CA verifies the server by the host it is reached at; a certificate, if given,
/// authenticates the client.
pub fn http_client_config(
    ca: &FileArg,
    identity: Option<(&FileArg, &FileArg)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = read_roots(ca)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = read_certs(cert)?;
            let k = read_key(key)?;
            check_key(chain.clone(), k.clone_key(), cert, key)?;
            builder
                .with_client_auth_cert(chain, k)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                        cert: cert.clone(),
                        key: key.clone(),
                    },
                    other => TlsError::BadCertificate {
                        file: cert.clone(),
                        error: other.to_string(),
                    },
                })?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads an API token file: its content without surrounding whitespace, non-empty.
pub fn read_token(file: &FileArg) -> Result<String, TlsError> {
    let bytes = file.read()?;
    let token = String::from_utf8_lossy(&bytes).trim().to_owned();
    if token.is_empty() {
        return Err(TlsError::EmptyToken { file: file.clone() });
    }
    Ok(token)
}

/// Whether `a` and `b` are equal, in a time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the file at `path` can be read by users other than its owner (Unix).
pub fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_certificate_names_its_id_and_hosts() {
        let day = Duration::from_secs(86_400);
        let ca = CertAuthority::generate("test CA", day).unwrap();
        let cert = ca
            .node("n1", &["localhost".into(), "10.0.0.1".into()], day)
            .unwrap();
        let der = CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap();
        assert_eq!(cert_names(&der), ["n1", "localhost", "10.0.0.1"]);
        assert!(cert_names(b"not a certificate").is_empty());
    }

    #[test]
    fn tokens_compare_in_full() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        let t = generate_api_token().unwrap();
        assert_eq!(t.len(), 64);
        assert_ne!(t, generate_api_token().unwrap());
    }
}
