//! Certificates for a cluster: a CA, node certificates (server and client, naming the
//! node's id and its hosts) and operator client certificates, with ECDSA P-256 keys
//! (`ebbtide certs`, `ebbtide bench drain --tls`, and the tests).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::time::Duration;

/// A certificate and its private key, PEM-encoded.
#[derive(Clone, Debug)]
pub struct GeneratedCert {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its private key (PEM, PKCS#8).
    pub key_pem: String,
}

/// A CA that signs node and client certificates.
pub struct CertAuthority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA's own certificate and key.
    pub ca: GeneratedCert,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertAuthority").finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams, valid_for: Duration) {
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clocks that are behind.
    params.not_before = now - time::Duration::hours(1);
    params.not_after =
        now + time::Duration::seconds(valid_for.as_secs().min(i64::MAX as u64) as i64);
}

fn err(what: &str, e: rcgen::Error) -> String {
    format!("{what}: {e}")
}

impl CertAuthority {
    /// A new CA named `name`, valid for `valid_for`.
    pub fn generate(name: &str, valid_for: Duration) -> Result<Self, String> {
        let key = KeyPair::generate().map_err(|e| err("generate the CA key", e))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| err("CA parameters", e))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, valid_for);
        let cert = params
            .self_signed(&key)
            .map_err(|e| err("self-sign the CA", e))?;
        let ca = GeneratedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        Ok(CertAuthority {
            issuer: Issuer::new(params, key),
            ca,
        })
    }

    /// A CA from its certificate and key (PEM), to sign more certificates with it.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| err("the CA key", e))?;
        let issuer =
            Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| err("the CA certificate", e))?;
        Ok(CertAuthority {
            issuer,
            ca: GeneratedCert {
                cert_pem: cert_pem.to_owned(),
                key_pem: key_pem.to_owned(),
            },
        })
    }

    fn issue(
        &self,
        common_name: &str,
        names: &[String],
        usages: Vec<ExtendedKeyUsagePurpose>,
        valid_for: Duration,
    ) -> Result<GeneratedCert, String> {
        let what = format!("certificate for {common_name}");
        let key = KeyPair::generate().map_err(|e| err(&what, e))?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(|e| err(&what, e))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages;
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, valid_for);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| err(&what, e))?;
        Ok(GeneratedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A node's certificate: common name and first DNS name its id, then `hosts` (DNS
    /// names or IP addresses) that clients reach it at; good for TLS servers and clients.
    pub fn node(
        &self,
        id: &str,
        hosts: &[String],
        valid_for: Duration,
    ) -> Result<GeneratedCert, String> {
        let mut names = vec![id.to_owned()];
        names.extend(hosts.iter().filter(|h| *h != id).cloned());
        self.issue(
            id,
            &names,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            valid_for,
        )
    }

    /// An operator's client certificate named `name` (TLS clients only).
    pub fn client(&self, name: &str, valid_for: Duration) -> Result<GeneratedCert, String> {
        self.issue(
            name,
            &[name.to_owned()],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
            valid_for,
        )
    }
}

/// A fresh random API token: 32 bytes from the OS's generator, hex-encoded.
pub fn generate_api_token() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system's random number generator failed".to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
