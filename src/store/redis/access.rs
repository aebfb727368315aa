//! Who the gateway is to Redis, and how it knows it reached the right Redis: the ACL user and
//! password, and the TLS material of a `rediss://` connection (the CA that signed Redis's certificate,
//! and an optional client certificate and key when Redis asks for one).
//!
//! It must never print the password or the client key (`Debug` shows whether they are set), and never
//! name them in an error: a refused login is reported as a refused login, nothing more.

use redis::{ClientTlsConfig, ConnectionInfo, IntoConnectionInfo, RedisResult, TlsCertificates};
use zeroize::Zeroizing;

/// The ACL login and TLS material of a Redis connection. The default is no login (the `default` user
/// without a password, or the credentials in the URL) and, for `rediss://`, the system's roots.
#[derive(Clone, Default)]
pub struct RedisAccess {
    /// The ACL user; `None` with a password: the `default` user.
    pub username: Option<String>,
    /// The ACL password; replaces a password in the URL.
    pub password: Option<Zeroizing<String>>,
    /// TLS material for `rediss://` URLs (every URL must then be `rediss://`).
    pub tls: Option<RedisTls>,
}

/// PEM TLS material for Redis.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// The CA certificates that may sign Redis's certificate; `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate chain and its private key, for Redis servers that require one.
    pub client: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl std::fmt::Debug for RedisAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAccess")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***SECRET***"))
            .field("tls", &self.tls)
            .finish()
    }
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client.is_some())
            .finish()
    }
}

impl RedisAccess {
    /// A standalone client for `url` with this login and TLS material.
    pub(super) fn client(&self, url: &str) -> RedisResult<redis::Client> {
        let info = self.login(url.into_connection_info()?);
        match self.certificates() {
            Some(certificates) => redis::Client::build_with_tls(info, certificates),
            None => redis::Client::open(info),
        }
    }

    /// `builder` with this login and TLS material (TLS itself comes from the nodes' `rediss://`).
    pub(super) fn cluster(
        &self,
        mut builder: redis::cluster::ClusterClientBuilder,
    ) -> redis::cluster::ClusterClientBuilder {
        if let Some(username) = &self.username {
            builder = builder.username(username);
        }
        if let Some(password) = &self.password {
            builder = builder.password(password.as_str());
        }
        if let Some(certificates) = self.certificates() {
            builder = builder.certs(certificates);
        }
        builder
    }

    fn login(&self, info: ConnectionInfo) -> ConnectionInfo {
        let mut settings = info.redis_settings().clone();
        if let Some(username) = &self.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password.as_str());
        }
        info.set_redis_settings(settings)
    }

    fn certificates(&self) -> Option<TlsCertificates> {
        let tls = self.tls.as_ref()?;
        Some(TlsCertificates {
            client_tls: tls.client.as_ref().map(|(cert, key)| ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.to_vec(),
            }),
            root_cert: tls.ca_pem.clone(),
        })
    }
}

/// What a failed connection attempt means, in words fit for a start-up error (no value from Redis).
pub(super) fn connect_failure(error: &redis::RedisError) -> &'static str {
    use redis::ErrorKind;
    match error.kind() {
        ErrorKind::AuthenticationFailed => "Redis refused the login (check store.username and the password)",
        ErrorKind::InvalidClientConfig => "the Redis connection settings are invalid",
        _ if error.is_io_error() => "Redis could not be reached (address, TLS certificates or network)",
        ErrorKind::Server(redis::ServerErrorKind::NoPerm) => {
            "Redis refused a command to this user (check the ACL rules)"
        }
        _ => "Redis refused the connection",
    }
}
