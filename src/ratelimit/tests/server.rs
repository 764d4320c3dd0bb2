//! A real, private `redis-server` for one test: its own loopback port, no
//! persistence, killed when dropped. Never the shared server on 6379.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` child process.
pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// A server on a free port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server on a free port, with more command-line options.
    pub fn start_with(extra: &[&str]) -> Self {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(free_port(), extra) {
                Ok(server) => return server,
                Err(e) => last = e,
            }
        }
        panic!("redis-server would not start: {last}");
    }

    /// A server on `port` (a restart where a killed one was).
    pub fn start_on(port: u16) -> Self {
        Self::try_start(port, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start(port: u16, extra: &[&str]) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port_text = port.to_string();
        let mut args = vec![
            "--port",
            &port_text,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        args.extend_from_slice(extra);
        let child = Command::new("redis-server")
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "these tests run a real Redis, and redis-server is not on PATH: \
                 apt-get install redis-server"
            ),
            Err(e) => panic!("cannot run redis-server: {e}"),
        };
        let mut server = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("redis-server on port {port} exited: {status}"));
            }
            if answers_ping(port) {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        server.stop();
        Err(format!(
            "redis-server on port {port} did not answer within 5 s"
        ))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL: no goodbye to clients).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(100)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// A Redis Cluster of three primaries (no replicas) on free ports, formed
/// with `redis-cli --cluster create` and waited for until every node says
/// `cluster_state:ok`; with the nodes' URLs.
pub async fn start_cluster() -> ([RedisServer; 3], Vec<String>) {
    let cluster: [RedisServer; 3] = std::array::from_fn(|_| {
        RedisServer::start_with(&[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
        ])
    });
    let addrs: Vec<String> = cluster
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli is installed with redis-server");
    assert!(created.status.success(), "{created:?}");
    let mut urls = Vec::new();
    for server in &cluster {
        let mut c = inspect(server).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut c)
                .await
                .unwrap();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not form: {info}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        urls.push(server.url());
    }
    (cluster, urls)
}

/// A plain connection for a test to look inside a server.
pub async fn inspect(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}
