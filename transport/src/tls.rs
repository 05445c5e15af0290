//! TLS material: a cluster CA, certificates it issues for nodes (server and client auth), and the rustls
//! configurations for mutual TLS between peers, TLS for agents and HTTPS for clients.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no {what}")]
    Missing { path: PathBuf, what: &'static str },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

const CA_COMMON_NAME: &str = "Berth cluster CA";

/// PEM text of a CA and of one certificate + key issued by it.
#[derive(Clone, Debug)]
pub struct TlsMaterial {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where a node's TLS material lives on disk.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsFiles {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A certificate authority that can issue node certificates.
pub struct ClusterCa {
    pub cert_pem: String,
    pub key_pem: String,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
}

impl ClusterCa {
    pub fn generate() -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        Ok(ClusterCa { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        Ok(ClusterCa { cert_pem: read_text(cert_file)?, key_pem: read_text(key_file)? })
    }

    /// Issues a certificate valid for server and client authentication under the given DNS names or IPs.
    pub fn issue(&self, common_name: &str, names: &[String]) -> Result<TlsMaterial, TlsError> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::new(ca_params(), ca_key);
        let mut params = CertificateParams::new(names.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2124, 1, 1);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(TlsMaterial { ca_pem: self.cert_pem.clone(), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

fn write_text(path: &Path, text: &str, private: bool) -> Result<(), TlsError> {
    let io = |source| TlsError::Write { path: path.to_owned(), source };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, text).map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

impl TlsMaterial {
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        Ok(TlsMaterial {
            ca_pem: read_text(&files.ca_file)?,
            cert_pem: read_text(&files.cert_file)?,
            key_pem: read_text(&files.key_file)?,
        })
    }

    pub fn save(&self, files: &TlsFiles) -> Result<(), TlsError> {
        write_text(&files.ca_file, &self.ca_pem, false)?;
        write_text(&files.cert_file, &self.cert_pem, false)?;
        write_text(&files.key_file, &self.key_pem, true)
    }

    pub fn cert_chain(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        parse_certs(&self.cert_pem, "cert")
    }

    pub fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        rustls_pemfile::private_key(&mut self.key_pem.as_bytes())
            .ok()
            .flatten()
            .ok_or(TlsError::Missing { path: PathBuf::from("<key>"), what: "private key" })
    }

    pub fn roots(&self) -> Result<RootCertStore, TlsError> {
        roots_from_pem(&self.ca_pem)
    }

    /// Server side of mutual TLS: only peers holding a certificate from the cluster CA get in.
    pub fn mtls_server_config(&self, alpn: &[u8]) -> Result<ServerConfig, TlsError> {
        let verifier = WebPkiClientVerifier::builder(Arc::new(self.roots()?)).build()?;
        let mut config = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.cert_chain()?, self.private_key()?)?;
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(config)
    }

    /// Server side without client certificates (agents, HTTPS clients).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
        let mut config =
            ServerConfig::builder().with_no_client_auth().with_single_cert(self.cert_chain()?, self.private_key()?)?;
        config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        Ok(config)
    }

    /// Client side of mutual TLS (peer to peer).
    pub fn mtls_client_config(&self, alpn: &[u8]) -> Result<ClientConfig, TlsError> {
        let mut config = ClientConfig::builder()
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(self.cert_chain()?, self.private_key()?)?;
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(config)
    }
}

/// Client side that trusts the given CA and presents no certificate (agents, API clients).
pub fn client_config_trusting(ca_pem: &str, alpn: &[u8]) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder().with_root_certificates(roots_from_pem(ca_pem)?).with_no_client_auth();
    if !alpn.is_empty() {
        config.alpn_protocols = vec![alpn.to_vec()];
    }
    Ok(config)
}

pub fn roots_from_pem(ca_pem: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(ca_pem, "CA")? {
        roots.add(cert)?;
    }
    Ok(roots)
}

fn parse_certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes()).filter_map(Result::ok).collect();
    if certs.is_empty() {
        return Err(TlsError::Missing { path: PathBuf::from(format!("<{what} pem>")), what: "certificate" });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_material_builds_every_config() {
        crate::install_crypto_provider();
        let ca = ClusterCa::generate().unwrap();
        let material = ca.issue("node-1", &["localhost".into(), "127.0.0.1".into()]).unwrap();
        material.mtls_server_config(b"x").unwrap();
        material.mtls_client_config(b"x").unwrap();
        material.server_config(&[b"h2"]).unwrap();
        client_config_trusting(&material.ca_pem, b"x").unwrap();
    }

    #[test]
    fn material_round_trips_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::generate().unwrap();
        let material = ca.issue("n", &["localhost".into()]).unwrap();
        let files = TlsFiles {
            ca_file: dir.path().join("ca.pem"),
            cert_file: dir.path().join("tls/cert.pem"),
            key_file: dir.path().join("tls/key.pem"),
        };
        material.save(&files).unwrap();
        let loaded = TlsMaterial::load(&files).unwrap();
        assert_eq!(loaded.cert_pem, material.cert_pem);
        let err = TlsMaterial::load(&TlsFiles { ca_file: dir.path().join("nope.pem"), ..files }).unwrap_err();
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }
}
