//! `RedisStore` on a real Redis Cluster: three primaries, each key's script
//! on the node that owns the key.

use std::process::Command;
use std::time::{Duration, Instant};

use super::server::{RedisServer, inspect};
use super::{ip_key, policy};
use crate::ratelimit::LimitStore;
use crate::ratelimit::redis::RedisStore;

/// Three primaries, no replicas: each key's script runs on its own node.
#[tokio::test]
async fn a_redis_cluster_keeps_each_budget_on_the_node_of_its_key() {
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
    let mut seeds = Vec::new();
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
        seeds.push(server.url());
    }

    let p = policy("login", "3/minute per ip", 0);
    let redis = RedisStore::open(&seeds.join(",")).unwrap();
    for n in 0..30 {
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(redis.check(&p, ip_key(n)).await.unwrap().allowed);
        }
        assert_eq!(got, [true, true, true, false], "key {n}");
    }
    let mut holders = 0;
    for server in &cluster {
        let mut c = inspect(server).await;
        let size: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
        holders += usize::from(size > 0);
    }
    assert!(holders >= 2, "30 keys spread over the nodes");
}
