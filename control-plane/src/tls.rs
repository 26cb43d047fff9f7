//! The server's TLS: its certificate (given, or generated under a private CA
//! kept in the state dir) and, for mTLS, the client CAs it requires.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

use crate::{pki, Config, Tls};

pub(crate) fn server_tls(config: &Config) -> Result<rustls::ServerConfig> {
    let (cert_pem, key_pem) = match &config.tls {
        Tls::Files { cert, key } => (read(cert)?, read(key)?),
        Tls::Pem { cert, key } => (cert.clone().into_bytes(), key.clone().into_bytes()),
        Tls::Generate { names } => generated(&config.state_dir.join("tls"), names)?,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .context("parsing the server certificate")?;
    if chain.is_empty() {
        bail!("the server certificate file holds no certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).context("parsing the server key")?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &config.client_ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&read(path)?) {
                roots
                    .add(cert.context("parsing the client CA")?)
                    .context("adding the client CA")?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .context("building the client verifier")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .context("the server certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Generate (once, and again when the names change) a CA and a server
/// certificate for the loopback names and `extra` in `dir`.
fn generated(dir: &Path, extra: &[String]) -> Result<(Vec<u8>, Vec<u8>)> {
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key");
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    names.extend(extra.iter().cloned());
    let listed = names.join("\n");
    let names_path = dir.join("names");
    let same_names = fs::read_to_string(&names_path).map_or(extra.is_empty(), |n| n == listed);
    let whole = [&cert_path, &key_path, &dir.join("ca.pem")]
        .iter()
        .all(|p| p.exists());
    if !whole || !same_names {
        fs::create_dir_all(dir)?;
        // New names keep the CA (its key is kept beside it), so runners that
        // trust ca.pem keep trusting the control plane.
        const CA_NAME: &str = "sortie reference control plane CA";
        let ca_key = dir.join("ca.key");
        let ca_pem = dir.join("ca.pem");
        let ca = match fs::read_to_string(&ca_key) {
            Ok(pem) => pki::Authority::from_key_pem(CA_NAME, &pem)?,
            Err(_) => {
                let ca = pki::Authority::generate(CA_NAME)?;
                // The certificate first: a crash between the two writes leaves
                // no key, so the next start makes both again.
                fs::write(&ca_pem, ca.cert_pem())?;
                write_private(&ca_key, ca.key_pem().as_bytes())?;
                ca
            }
        };
        if !ca_pem.exists() {
            // Removed: the same key signs it again, so runners that trust the
            // old one still trust the server.
            fs::write(&ca_pem, ca.cert_pem())?;
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let server = ca.server(&names)?;
        fs::write(&names_path, &listed)?;
        fs::write(&cert_path, &server.cert_pem)?;
        write_private(&key_path, server.key_pem.as_bytes())?;
    }
    Ok((read(&cert_path)?, read(&key_path)?))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(())
}
