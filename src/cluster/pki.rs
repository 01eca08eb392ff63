//! The cluster PKI, generated offline: the K3s CA set and the admin client certificate.
//!
//! Topology: the same as K3s's own default, one self-signed ECDSA P-256 CA per role
//! (server, client, request-header, etcd peer, etcd server) plus an RSA-2048
//! `service.key`. With a single self-signed `server-ca.crt`, K3s hashes the literal bytes
//! of that PEM file for the `K10<hash>::` token prefix (`hashCA` in K3s
//! `pkg/clientaccess/token.go`), so [`ca_hash`] is a SHA-256 over exactly the bytes we
//! write. Certificates are backdated one day (Pi clocks without an RTC start in the past).
//! Inputs: a CSPRNG and "now"; outputs: PEM strings. No I/O.

use rand::{CryptoRng, RngCore};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// The files K3s expects under `server/tls/` before its first start to use a custom CA.
pub const CA_FILES: [&str; 11] = [
    "server-ca.crt",
    "server-ca.key",
    "client-ca.crt",
    "client-ca.key",
    "request-header-ca.crt",
    "request-header-ca.key",
    "etcd/peer-ca.crt",
    "etcd/peer-ca.key",
    "etcd/server-ca.crt",
    "etcd/server-ca.key",
    "service.key",
];

/// The CAs and the common-name prefixes K3s itself uses for them.
const CAS: [(&str, &str); 5] = [
    ("server-ca", "k3s-server-ca"),
    ("client-ca", "k3s-client-ca"),
    ("request-header-ca", "k3s-request-header-ca"),
    ("etcd/peer-ca", "etcd-peer-ca"),
    ("etcd/server-ca", "etcd-server-ca"),
];

/// CA lifetime (K3s's self-generated CAs also last ten years).
pub const CA_DAYS: i64 = 3650;
/// Admin client certificate lifetime; a rebuild re-issues it when it nears expiry.
pub const ADMIN_DAYS: i64 = 365;
/// How far certificates are backdated.
pub const BACKDATE: Duration = Duration::days(1);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("generating {what}: {msg}")]
    Generate { what: String, msg: String },
    #[error("{what} is not a valid certificate or key: {msg}")]
    Parse { what: String, msg: String },
}

fn gen_err(what: &str, e: impl std::fmt::Display) -> PkiError {
    PkiError::Generate {
        what: what.to_owned(),
        msg: e.to_string(),
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertKey(<redacted>)")
    }
}

fn serial(rng: &mut (impl RngCore + CryptoRng)) -> SerialNumber {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[0] &= 0x7f;
    b[0] |= 0x01;
    SerialNumber::from_slice(&b)
}

fn p256(what: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| gen_err(what, e))
}

/// One self-signed CA named `<prefix>@<epoch>` like K3s's own.
pub fn self_signed_ca(
    prefix: &str,
    rng: &mut (impl RngCore + CryptoRng),
    now: OffsetDateTime,
) -> Result<CertKey, PkiError> {
    let key = p256(prefix)?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("{prefix}@{}", now.unix_timestamp()),
    );
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    p.not_before = now - BACKDATE;
    p.not_after = now + Duration::days(CA_DAYS);
    p.serial_number = Some(serial(rng));
    let cert = p.self_signed(&key).map_err(|e| gen_err(prefix, e))?;
    Ok(CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The RSA-2048 service-account signing key, PKCS#1 PEM (as `openssl genrsa -traditional`).
pub fn service_key(rng: &mut (impl RngCore + CryptoRng)) -> Result<String, PkiError> {
    use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(rng, 2048).map_err(|e| gen_err("service.key", e))?;
    Ok(key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| gen_err("service.key", e))?
        .to_string())
}

/// The whole CA set as (file under `server/tls/`, PEM content), in [`CA_FILES`] order.
pub fn generate_ca_set(
    rng: &mut (impl RngCore + CryptoRng),
    now: OffsetDateTime,
) -> Result<Vec<(String, String)>, PkiError> {
    let mut out = Vec::new();
    for (file, prefix) in CAS {
        let ca = self_signed_ca(prefix, rng, now)?;
        out.push((format!("{file}.crt"), ca.cert_pem));
        out.push((format!("{file}.key"), ca.key_pem));
    }
    out.push(("service.key".to_owned(), service_key(rng)?));
    Ok(out)
}

/// The admin client certificate: CN `system:admin`, O `system:masters`, clientAuth,
/// signed by the client CA (the apiserver's `--client-ca-file`), so it is cluster-admin.
pub fn issue_admin(
    client_ca: &CertKey,
    rng: &mut (impl RngCore + CryptoRng),
    now: OffsetDateTime,
) -> Result<CertKey, PkiError> {
    let ca_key = KeyPair::from_pem(&client_ca.key_pem).map_err(|e| PkiError::Parse {
        what: "client-ca.key".into(),
        msg: e.to_string(),
    })?;
    let issuer =
        Issuer::from_ca_cert_pem(&client_ca.cert_pem, ca_key).map_err(|e| PkiError::Parse {
            what: "client-ca.crt".into(),
            msg: e.to_string(),
        })?;
    let key = p256("admin")?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "system:masters");
    dn.push(DnType::CommonName, "system:admin");
    p.distinguished_name = dn;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - BACKDATE;
    p.not_after = now + Duration::days(ADMIN_DAYS);
    p.serial_number = Some(serial(rng));
    let cert = p
        .signed_by(&key, &issuer)
        .map_err(|e| gen_err("admin certificate", e))?;
    Ok(CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The CA hash of the `K10<hash>::` token prefix for a single self-signed server CA:
/// SHA-256 over the exact bytes of `server-ca.crt` (what `/cacerts` serves), lowercase hex.
pub fn ca_hash(server_ca_pem: &[u8]) -> String {
    hex::encode(Sha256::digest(server_ca_pem))
}

/// Facts about one PEM certificate for listings (no secret material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the DER, lowercase hex.
    pub fingerprint: String,
}

/// Parse the first certificate of a PEM text.
pub fn cert_info(pem_text: &str, what: &str) -> Result<CertInfo, PkiError> {
    let perr = |msg: String| PkiError::Parse {
        what: what.to_owned(),
        msg,
    };
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem_text.as_bytes()).map_err(|e| perr(e.to_string()))?;
    let cert = pem.parse_x509().map_err(|e| perr(e.to_string()))?;
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        fingerprint: hex::encode(Sha256::digest(&pem.contents)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn admin_is_signed_by_client_ca_and_backdated() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let ca = self_signed_ca("k3s-client-ca", &mut rng, now).unwrap();
        let admin = issue_admin(&ca, &mut rng, now).unwrap();
        let info = cert_info(&admin.cert_pem, "admin").unwrap();
        assert!(info.subject.contains("CN=system:admin"), "{}", info.subject);
        assert!(
            info.subject.contains("O=system:masters"),
            "{}",
            info.subject
        );
        assert_eq!(info.not_before, 1_800_000_000 - 86_400);
        let ca_info = cert_info(&ca.cert_pem, "ca").unwrap();
        assert_eq!(ca_info.subject, "CN=k3s-client-ca@1800000000");
    }

    #[test]
    fn hash_is_over_file_bytes() {
        assert_eq!(
            ca_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
