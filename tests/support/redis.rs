//! Real `redis-server` processes for the storage tests: standalone and a 3-master Cluster, on free
//! loopback ports, each in its own temporary directory with an append-only file.
//!
//! Every server runs under a tiny `sh` supervisor that holds the read end of a pipe from this test
//! process: when the pipe closes (the server is dropped, or the test binary exits — even by a panic or
//! a signal), the supervisor kills its `redis-server`. That is what lets one server per test binary
//! live in a `static` without leaking processes. Readiness is polled with `PING` in a bounded loop.
//!
//! If `redis-server` is missing the tests fail with a clear message, unless `IDGATE_SKIP_REDIS_TESTS=1`
//! is set, in which case they are skipped with a printed note.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use idgate::store::redis::{RedisOptions, RedisStore};
use tokio::sync::OnceCell;
use tokio::time::{Instant, sleep};

/// Bound of every wait for a server to come up.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// Poll interval inside the bounded readiness loops.
const POLL: Duration = Duration::from_millis(25);
/// Port collisions (another process took the port between our probe and redis's bind) are retried.
const START_ATTEMPTS: usize = 5;

/// `$1`: a directory to remove when done (empty: none); then redis-server's arguments.
const SUPERVISOR: &str = r#"
cleanup=$1
shift
redis-server "$@" &
pid=$!
echo "$pid"
# Hold until the test process closes our stdin (drop or exit), then take redis down with us.
cat >/dev/null
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ -n "$cleanup" ]; then rm -rf "$cleanup"; fi
exit 0
"#;

/// `false` (after printing a note) when the Redis tests are to be skipped; panics with a clear
/// message when `redis-server` is missing and skipping was not asked for.
pub fn redis_tests_enabled() -> bool {
    if std::env::var("IDGATE_SKIP_REDIS_TESTS").as_deref() == Ok("1") {
        // Straight to the process's stderr, past the test harness's capture: a skip must be seen.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: IDGATE_SKIP_REDIS_TESTS=1 — a test that needs redis-server did not run"
        );
        return false;
    }
    let version = Command::new("redis-server")
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned());
    let Some(version) = version else {
        panic!(
            "redis-server is not installed: the Redis store tests need 7.0 or newer, with redis-cli \
             (`scripts/dev-deps` installs them). Set IDGATE_SKIP_REDIS_TESTS=1 to skip them."
        );
    };
    let major = redis_major_version(&version);
    assert!(
        major.is_some_and(|major| major >= 7),
        "redis-server is too old or unreadable ({}): the tests need 7.0 or newer \
         (--appenddirname, TLS cluster ports, ACL selectors); `scripts/dev-deps` checks it",
        version.trim()
    );
    true
}

/// The major version in `redis-server --version`'s line (`Redis server v=7.0.15 sha=…`).
fn redis_major_version(line: &str) -> Option<u32> {
    let v = line.split_whitespace().find_map(|word| word.strip_prefix("v="))?;
    v.split('.').next()?.parse().ok()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a probe socket on loopback");
    listener.local_addr().expect("probe socket address").port()
}

/// One `redis-server` under its supervisor.
pub struct RedisServer {
    pub port: u16,
    /// The server's directory: `redis.log`, and the append-only files under `aof/`.
    pub dir: PathBuf,
    /// Removes the directory on drop; a server in a `static` is never dropped, so its supervisor
    /// removes the directory instead (`shared`).
    _temp: Option<tempfile::TempDir>,
    shared: bool,
    args: Vec<String>,
    supervisor: Option<Child>,
    redis_pid: u32,
    /// TLS and the harness's own ACL login, for a locked-down server (see [`LockedDown`]).
    admin: Option<Admin>,
}

impl RedisServer {
    /// A standalone server owned by the caller (stopped and its directory removed on drop).
    pub async fn start() -> Self {
        Self::start_with(&[], false).await
    }

    async fn start_with(extra: &[&str], shared: bool) -> Self {
        Self::start_as(extra, shared, None).await
    }

    async fn start_as(extra: &[&str], shared: bool, admin: Option<Admin>) -> Self {
        let temp = tempfile::Builder::new()
            .prefix("idgate-redis-")
            .tempdir()
            .expect("temporary directory");
        let dir = temp.path().to_path_buf();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let port_text = port.to_string();
            // A locked-down server listens with TLS only.
            let ports = match admin {
                Some(_) => ["--port", "0", "--tls-port", &port_text],
                None => ["--port", &port_text, "--bind", "127.0.0.1"],
            };
            let mut args: Vec<String> = ports.map(str::to_owned).to_vec();
            args.extend(
                [
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    dir.to_str().expect("utf-8 temp path"),
                    "--logfile",
                    "redis.log",
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appenddirname",
                    "aof",
                    // Every write reaches the AOF before the reply, so tests can read it right away.
                    "--appendfsync",
                    "always",
                ]
                .map(str::to_owned),
            );
            args.extend(extra.iter().map(|a| (*a).to_owned()));
            if extra.contains(&"--cluster-enabled") {
                // The cluster bus needs a free port too (the default, port + 10000, may be taken or
                // out of range).
                args.extend(["--cluster-port".to_owned(), free_port().to_string()]);
            }
            let mut server = Self {
                port,
                dir: dir.clone(),
                _temp: None,
                shared,
                args,
                supervisor: None,
                redis_pid: 0,
                admin: admin.clone(),
            };
            server.spawn();
            if server.wait_ready().await {
                server._temp = Some(temp);
                return server;
            }
            // Most likely the port was taken meanwhile: stop this one and try another.
            server.stop();
        }
        panic!(
            "redis-server did not start after {START_ATTEMPTS} attempts; last log:\n{}",
            std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default()
        );
    }

    fn spawn(&mut self) {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("redis-supervisor")
            .arg(if self.shared { self.dir.as_os_str() } else { "".as_ref() })
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sh to supervise redis-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("supervisor stdout"))
            .read_line(&mut line)
            .expect("read redis-server's pid");
        self.redis_pid = line.trim().parse().expect("redis-server's pid");
        self.supervisor = Some(child);
    }

    fn alive(&self) -> bool {
        signal(self.redis_pid, "-0")
    }

    /// Polls until this very server (checked by its directory) answers, the process dies, or the
    /// readiness bound passes.
    async fn wait_ready(&self) -> bool {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if !self.alive() {
                return false;
            }
            if let Some(dir) = config_dir(&self.url(), self.admin.as_ref()).await {
                return Path::new(&dir) == self.dir;
            }
            sleep(POLL).await;
        }
        false
    }

    pub fn url(&self) -> String {
        match self.admin {
            Some(_) => format!("rediss://127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Kills the server (a crash: no shutdown); the directory and its AOF stay for [`Self::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.supervisor.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }

    /// Starts the same server again, on the same port and directory (it reloads its AOF).
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn();
        assert!(
            self.wait_ready().await,
            "redis-server did not come back on port {}",
            self.port
        );
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers.
    pub fn pause(&self) {
        assert!(signal(self.redis_pid, "-STOP"), "SIGSTOP redis-server");
    }

    pub fn resume(&self) {
        assert!(signal(self.redis_pid, "-CONT"), "SIGCONT redis-server");
    }

    /// Every file under the server's directory (log excluded), recursively.
    pub fn data_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        let mut dirs = vec![self.dir.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read the redis directory") {
                let path = entry.expect("directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.file_name().is_some_and(|n| n != "redis.log") {
                    files.push(path);
                }
            }
        }
        files
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn connection(url: &str, admin: Option<&Admin>) -> Option<redis::aio::MultiplexedConnection> {
    let client = match admin {
        Some(admin) => admin.client(url),
        None => redis::Client::open(url).ok()?,
    };
    tokio::time::timeout(Duration::from_millis(500), client.get_multiplexed_async_connection())
        .await
        .ok()?
        .ok()
}

async fn command<T: redis::FromRedisValue>(url: &str, admin: Option<&Admin>, cmd: &redis::Cmd) -> Option<T> {
    let mut con = connection(url, admin).await?;
    tokio::time::timeout(Duration::from_millis(500), cmd.query_async(&mut con))
        .await
        .ok()?
        .ok()
}

async fn config_dir(url: &str, admin: Option<&Admin>) -> Option<String> {
    let reply: Vec<String> = command(url, admin, redis::cmd("CONFIG").arg("GET").arg("dir")).await?;
    reply.get(1).cloned()
}

/// Three masters, no replicas, all 16384 slots assigned.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub async fn start() -> Self {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(
                RedisServer::start_with(
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ],
                    true,
                )
                .await,
            );
        }
        let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let created = tokio::task::spawn_blocking(move || {
            // `timeout` bounds redis-cli, which waits for the nodes to join.
            Command::new("timeout")
                .arg("60")
                .arg("redis-cli")
                .arg("--cluster")
                .arg("create")
                .args(&addresses)
                .args(["--cluster-replicas", "0", "--cluster-yes"])
                .output()
                .expect("run redis-cli --cluster create")
        })
        .await
        .expect("redis-cli task");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed:\n{}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self { nodes };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let mut ok = true;
            for node in &cluster.nodes {
                let info: Option<String> = command(&node.url(), None, redis::cmd("CLUSTER").arg("INFO")).await;
                ok &= info.is_some_and(|i| i.contains("cluster_state:ok"));
            }
            if ok {
                return cluster;
            }
            assert!(
                Instant::now() < deadline,
                "the Redis cluster did not reach cluster_state:ok"
            );
            sleep(POLL).await;
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }
}

/// The commands the gateway's ACL user needs, and no more: the storage conformance suites pass
/// against a server whose gateway user has exactly these (backend `redis_locked_down` in
/// `tests/conformance.rs`; docs/operations.md lists them for operators). Scripts run with `EVALSHA`, loaded
/// by `SCRIPT LOAD` on `NOSCRIPT` (`EVAL` is the client's fallback); The client's greeting `CLIENT SETINFO`
/// (Redis 7.2+) may be refused: the client ignores that.
pub const GATEWAY_COMMANDS: &str = "-@all +ping +evalsha +eval +script|load \
     +get +set +del +mget +expire +pexpire +pttl +exists +incr \
     +hgetall +hget +hmget +hset +hdel +hexists +sadd +srem +smembers +zadd +zrange +zrem +zcount \
     +xadd +xack +xautoclaim +xclaim +xdel +xgroup|create +xrange +xreadgroup +xpending";

/// The harness's own login to a locked-down server: TLS with a client certificate, as the `admin`
/// ACL user (all commands; the gateway's user is made by [`LockedDown::gateway_user`]).
#[derive(Clone)]
pub struct Admin {
    pub ca: Vec<u8>,
    pub client_cert: Vec<u8>,
    pub client_key: Vec<u8>,
    password: String,
}

impl Admin {
    fn certificates(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: self.client_cert.clone(),
                client_key: self.client_key.clone(),
            }),
            root_cert: Some(self.ca.clone()),
        }
    }

    fn client(&self, url: &str) -> redis::Client {
        self.client_as(url, "admin", &self.password)
    }

    /// A TLS client with the harness's certificate, logged in as `username`.
    pub fn client_as(&self, url: &str, username: &str, password: &str) -> redis::Client {
        use redis::IntoConnectionInfo as _;
        let info = url.into_connection_info().expect("a Redis URL");
        let login = info
            .redis_settings()
            .clone()
            .set_username(username)
            .set_password(password);
        redis::Client::build_with_tls(info.set_redis_settings(login), self.certificates()).expect("a TLS client")
    }

    /// The TLS material for the gateway's own connection (the same CA and client certificate).
    pub fn tls(&self) -> idgate::store::redis::RedisTls {
        idgate::store::redis::RedisTls {
            ca_pem: Some(self.ca.clone()),
            client: Some((
                self.client_cert.clone(),
                zeroize::Zeroizing::new(self.client_key.clone()),
            )),
        }
    }
}

fn random_hex() -> String {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).expect("randomness");
    hex::encode(random)
}

/// A locked-down standalone `redis-server`: TLS only (`--port 0`), client certificates required
/// (a CA made with rcgen by `idgate::pki`), the `default` user disabled, an `admin` user for the
/// harness, and gateway users that may touch only their own `<prefix>:*` keys with
/// [`GATEWAY_COMMANDS`].
pub struct LockedDown {
    pub server: RedisServer,
    pub admin: Admin,
}

impl LockedDown {
    pub async fn start() -> Self {
        Self::start_shared(false).await
    }

    async fn start_shared(shared: bool) -> Self {
        let pki_dir = tempfile::tempdir().expect("temporary directory");
        let pki = idgate::pki::generate_dev_pki(&pki_dir.path().join("pki"), false).expect("a test PKI");
        let read = |path: PathBuf| std::fs::read(path).expect("read a test PKI file");
        let admin = Admin {
            ca: read(pki.ca()),
            client_cert: read(pki.client_cert("onboarding")),
            client_key: read(pki.client_key("onboarding")),
            password: random_hex(),
        };
        let path = |p: PathBuf| p.to_str().expect("utf-8 temp path").to_owned();
        // ACL rules cannot be given on the command line (it joins `--user`'s words into a name).
        let acl = pki_dir.path().join("users.acl");
        let rules = format!("user default off\nuser admin on >{} ~* &* +@all\n", admin.password);
        std::fs::write(&acl, rules).expect("write the ACL file");
        let (cert, key, ca, acl) = (
            path(pki.server_cert()),
            path(pki.server_key()),
            path(pki.ca()),
            path(acl),
        );
        let args = [
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "yes",
            "--aclfile",
            &acl,
        ];
        // redis-server has read its certificates and users by the time it answers; the directory can go.
        let server = RedisServer::start_as(&args, shared, Some(admin.clone())).await;
        Self { server, admin }
    }

    /// A new ACL user that may touch only `<prefix>:*` keys (no channels) with [`GATEWAY_COMMANDS`]:
    /// its name and password.
    pub async fn gateway_user(&self, prefix: &str) -> (String, String) {
        let (name, password) = (format!("gw-{}", random_hex()), random_hex());
        let mut setuser = redis::cmd("ACL");
        setuser
            .arg("SETUSER")
            .arg(&name)
            .arg("reset")
            .arg("on")
            .arg(format!(">{password}"))
            .arg(format!("~{prefix}:*"))
            .arg("resetchannels");
        for rule in GATEWAY_COMMANDS.split_whitespace() {
            setuser.arg(rule);
        }
        // No short bound here (unlike readiness polling): a TLS handshake on a loaded machine is slow.
        let mut admin = self
            .admin
            .client(&self.server.url())
            .get_multiplexed_async_connection()
            .await
            .expect("the harness's admin connection");
        let () = setuser
            .query_async(&mut admin)
            .await
            .expect("ACL SETUSER for the gateway user");
        (name, password)
    }

    /// Store options for one test: its own prefix, its own gateway user, TLS with the test CA.
    pub async fn options(&self) -> RedisOptions {
        let mut options = test_options();
        let (username, password) = self.gateway_user(&options.key_prefix).await;
        options.access = idgate::store::redis::RedisAccess {
            username: Some(username),
            password: Some(zeroize::Zeroizing::new(password)),
            tls: Some(self.admin.tls()),
        };
        options
    }
}

/// Options for one test: its own random key prefix, so tests sharing a server never see each other.
pub fn test_options() -> RedisOptions {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("randomness");
    RedisOptions {
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(2),
        key_prefix: format!("t{}", hex::encode(random)),
        ..RedisOptions::default()
    }
}

static STANDALONE: OnceCell<RedisServer> = OnceCell::const_new();
static CLUSTER: OnceCell<RedisCluster> = OnceCell::const_new();
static LOCKED_DOWN: OnceCell<LockedDown> = OnceCell::const_new();

/// A Redis store on this test binary's shared locked-down server ([`LockedDown`]), as a gateway
/// user limited to the test's own key prefix (`None`: skipped).
pub async fn locked_down_redis() -> Option<RedisStore> {
    if !redis_tests_enabled() {
        return None;
    }
    let server = LOCKED_DOWN.get_or_init(|| LockedDown::start_shared(true)).await;
    let store = RedisStore::standalone(&server.server.url(), server.options().await)
        .await
        .expect("connect to the locked-down redis-server as the gateway user");
    Some(store)
}

/// A Redis store on this test binary's shared standalone server (`None`: skipped).
pub async fn standalone_redis() -> Option<RedisStore> {
    if !redis_tests_enabled() {
        return None;
    }
    let server = STANDALONE.get_or_init(|| RedisServer::start_with(&[], true)).await;
    let store = RedisStore::standalone(&server.url(), test_options())
        .await
        .expect("connect to the test redis-server");
    Some(store)
}

/// A Redis store on this test binary's shared Cluster (`None`: skipped).
pub async fn cluster_redis() -> Option<RedisStore> {
    if !redis_tests_enabled() {
        return None;
    }
    let cluster = CLUSTER.get_or_init(RedisCluster::start).await;
    let store = RedisStore::cluster(&cluster.urls(), test_options())
        .await
        .expect("connect to the test Redis cluster");
    Some(store)
}

/// Every key of the server behind `con` that matches `pattern` (`SCAN MATCH`).
pub async fn keys_matching(con: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(100)
            .query_async(con)
            .await
            .unwrap();
        all.extend(keys);
        if next == 0 {
            return all;
        }
        cursor = next;
    }
}

/// Every value under every key of the given nodes, read according to its type.
pub async fn all_values(urls: &[String]) -> Vec<(String, Vec<u8>)> {
    let mut values = Vec::new();
    for url in urls {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        for key in keys_matching(&mut con, "*").await {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut con).await.unwrap();
            let parts: Vec<Vec<u8>> = match kind.as_str() {
                "string" => vec![redis::cmd("GET").arg(&key).query_async(&mut con).await.unwrap()],
                "hash" => redis::cmd("HGETALL").arg(&key).query_async(&mut con).await.unwrap(),
                "set" => redis::cmd("SMEMBERS").arg(&key).query_async(&mut con).await.unwrap(),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(&mut con)
                    .await
                    .unwrap(),
                "stream" => {
                    let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
                        .arg(&key)
                        .arg("-")
                        .arg("+")
                        .query_async(&mut con)
                        .await
                        .unwrap();
                    entries.into_iter().flat_map(|(_, fields)| fields).collect()
                }
                "none" => Vec::new(), // expired meanwhile
                other => panic!("unexpected type {other} of {key}"),
            };
            values.extend(parts.into_iter().map(|v| (key.clone(), v)));
        }
    }
    values
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
