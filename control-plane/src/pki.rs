//! Certificates for the reference control plane and for tests.
//!
//! A control plane started without certificate files generates a private CA and a
//! server certificate for the loopback names, and writes `ca.pem` where a runner can
//! be pointed at it with `--ca-file`. The same helpers issue client certificates for
//! mTLS and deliberately wrong ones (another CA, an expired validity) for tests.

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A PEM certificate and its PEM private key.
#[derive(Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A certificate authority that can issue server and client certificates.
pub struct Authority {
    cert: Certificate,
    key: KeyPair,
}

impl Authority {
    /// A new self-signed CA named `name`.
    pub fn generate(name: &str) -> Result<Authority> {
        let key = KeyPair::generate().context("generating a CA key")?;
        Authority::with_key(name, key)
    }

    /// The CA named `name` with the key in `key_pem` (what [`Authority::key_pem`]
    /// wrote): certificates it issues verify against the CA certificate made
    /// with that key and name before.
    pub fn from_key_pem(name: &str, key_pem: &str) -> Result<Authority> {
        let key = KeyPair::from_pem(key_pem).context("reading the CA key")?;
        Authority::with_key(name, key)
    }

    fn with_key(name: &str, key: KeyPair) -> Result<Authority> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name = name_of(name);
        let cert = params.self_signed(&key).context("self-signing the CA")?;
        Ok(Authority { cert, key })
    }

    /// The CA's private key (PEM), to keep beside its certificate.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `names` (DNS names or IP literals).
    pub fn server(&self, names: &[&str]) -> Result<Pair> {
        self.issue(
            names,
            "sortie control plane",
            ExtendedKeyUsagePurpose::ServerAuth,
            false,
        )
    }

    /// A server certificate whose validity ended in 2020.
    pub fn expired_server(&self, names: &[&str]) -> Result<Pair> {
        self.issue(names, "expired", ExtendedKeyUsagePurpose::ServerAuth, true)
    }

    /// A client certificate for mTLS with common name `cn`.
    pub fn client(&self, cn: &str) -> Result<Pair> {
        self.issue(&[], cn, ExtendedKeyUsagePurpose::ClientAuth, false)
    }

    fn issue(
        &self,
        names: &[&str],
        cn: &str,
        usage: ExtendedKeyUsagePurpose,
        expired: bool,
    ) -> Result<Pair> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name = name_of(cn);
        params.extended_key_usages = vec![usage];
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let key = KeyPair::generate().context("generating a key")?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .context("signing a certificate")?;
        Ok(Pair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn name_of(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}
