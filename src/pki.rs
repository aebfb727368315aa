//! The development PKI of docs/api.md §3: a CA, a server certificate, and one client certificate per role.
//!
//! For development and tests only: `idgate dev-certs --out DIR` and `serve --dev` write it; it is
//! never committed. Keys are PKCS#8 PEM files readable by the owner only.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::crypto::keyfile::{KeyFileError, create_private_dir, write_private_file};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Write(#[from] KeyFileError),
    #[error("{0} already exists; pass --force to replace the development PKI")]
    Exists(PathBuf),
}

/// The client identities of the development PKI: (file stem, role = OU, principal = CN).
pub const DEV_CLIENTS: [(&str, &str, &str); 4] = [
    ("onboarding", "onboarding", "onboarding-dev"),
    ("reviewer-1", "reviewer", "reviewer-1"),
    ("reviewer-2", "reviewer", "reviewer-2"),
    ("admin", "admin", "admin-dev"),
];

/// The development CA's subject (O, CN). Client tools read a gateway certificate issued under it as
/// a development gateway's (`loadtest` runs against no other unless told): no other CA may take it.
pub const DEV_CA_ORGANIZATION: &str = "idgate development";
pub const DEV_CA_NAME: &str = "idgate development CA";

/// Files of a development PKI directory.
#[derive(Debug, Clone)]
pub struct DevPki {
    pub dir: PathBuf,
}

impl DevPki {
    pub fn at(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf() }
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn client_cert(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.pem"))
    }
    pub fn client_key(&self, stem: &str) -> PathBuf {
        self.dir.join(format!("{stem}.key"))
    }
    /// Whether every file is there.
    pub fn is_complete(&self) -> bool {
        [self.ca(), self.server_cert(), self.server_key()]
            .iter()
            .all(|p| p.exists())
            && DEV_CLIENTS
                .iter()
                .all(|(stem, _, _)| self.client_cert(stem).exists() && self.client_key(stem).exists())
    }
}

fn name(cn: &str, ou: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, DEV_CA_ORGANIZATION);
    if let Some(ou) = ou {
        dn.push(DnType::OrganizationalUnitName, ou);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

fn write_pair(dir: &Path, stem: &str, cert_pem: &str, key: &KeyPair) -> Result<(), PkiError> {
    let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
    write_private_file(&dir.join(format!("{stem}.key")), key_pem.as_bytes())?;
    write_private_file(&dir.join(format!("{stem}.pem")), cert_pem.as_bytes())?;
    Ok(())
}

/// Writes a fresh development PKI into `dir`. With `force`, replaces one that exists.
pub fn generate_dev_pki(dir: &Path, force: bool) -> Result<DevPki, PkiError> {
    let pki = DevPki::at(dir);
    create_private_dir(dir)?;
    if pki.ca().exists() && !force {
        return Err(PkiError::Exists(pki.ca()));
    }
    if force {
        for path in std::iter::once(pki.ca())
            .chain([pki.server_cert(), pki.server_key(), dir.join("ca.key")])
            .chain(
                DEV_CLIENTS
                    .iter()
                    .flat_map(|(s, _, _)| [pki.client_cert(s), pki.client_key(s)]),
            )
        {
            let _ = std::fs::remove_file(path);
        }
    }

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name = name(DEV_CA_NAME, None);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    write_private_file(&pki.ca(), ca_cert.pem().as_bytes())?;
    // The CA key is kept so that more client certificates can be issued by hand; it stays private.
    write_private_file(
        &dir.join("ca.key"),
        zeroize::Zeroizing::new(ca_key.serialize_pem()).as_bytes(),
    )?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    server.distinguished_name = name("idgate dev server", None);
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &issuer)?;
    write_pair(dir, "server", &server_cert.pem(), &server_key)?;

    for (stem, role, principal) in DEV_CLIENTS {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name(principal, Some(role));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &issuer)?;
        write_pair(dir, stem, &cert.pem(), &key)?;
    }
    Ok(pki)
}
