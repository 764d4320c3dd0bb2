//! `RedisStore` on a real Redis Cluster: three primaries, each key's script
//! on the node that owns the key.

use super::server::{inspect, start_cluster};
use super::{ip_key, policy};
use crate::ratelimit::LimitStore;
use crate::ratelimit::redis::RedisStore;

/// Three primaries, no replicas: each key's script runs on its own node.
#[tokio::test]
async fn a_redis_cluster_keeps_each_budget_on_the_node_of_its_key() {
    let (cluster, seeds) = start_cluster().await;

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
