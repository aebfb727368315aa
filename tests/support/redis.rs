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
    let installed = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        installed,
        "redis-server is not installed: the Redis store tests need it \
         (Debian: apt-get install redis-server). Set IDGATE_SKIP_REDIS_TESTS=1 to skip them."
    );
    true
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
}

impl RedisServer {
    /// A standalone server owned by the caller (stopped and its directory removed on drop).
    pub async fn start() -> Self {
        Self::start_with(&[], false).await
    }

    async fn start_with(extra: &[&str], shared: bool) -> Self {
        let temp = tempfile::Builder::new()
            .prefix("idgate-redis-")
            .tempdir()
            .expect("temporary directory");
        let dir = temp.path().to_path_buf();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
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
            .map(str::to_owned)
            .to_vec();
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
            if let Some(dir) = config_dir(&self.url()).await {
                return Path::new(&dir) == self.dir;
            }
            sleep(POLL).await;
        }
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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

async fn connection(url: &str) -> Option<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(url).ok()?;
    tokio::time::timeout(Duration::from_millis(500), client.get_multiplexed_async_connection())
        .await
        .ok()?
        .ok()
}

async fn command<T: redis::FromRedisValue>(url: &str, cmd: &redis::Cmd) -> Option<T> {
    let mut con = connection(url).await?;
    tokio::time::timeout(Duration::from_millis(500), cmd.query_async(&mut con))
        .await
        .ok()?
        .ok()
}

async fn config_dir(url: &str) -> Option<String> {
    let reply: Vec<String> = command(url, redis::cmd("CONFIG").arg("GET").arg("dir")).await?;
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
                let info: Option<String> = command(&node.url(), redis::cmd("CLUSTER").arg("INFO")).await;
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

/// Every value under every key of the given nodes, read according to its type.
pub async fn all_values(urls: &[String]) -> Vec<(String, Vec<u8>)> {
    let mut values = Vec::new();
    for url in urls {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(100)
                .query_async(&mut con)
                .await
                .unwrap();
            for key in keys {
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
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    values
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
