//! The shared store and its failover, tested against real Redis servers:
//! each test starts its own `redis-server` on a free loopback port and kills
//! it when done, so tests neither share data nor need a server started by
//! hand.

mod cluster;
mod failover_store;
mod redis_store;
mod server;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::{LimitKey, Policy};

fn policy(name: &str, spec: &str, index: usize) -> Arc<Policy> {
    Arc::new(Policy::new(name, spec.parse().unwrap(), index))
}

fn ip_key(n: u32) -> LimitKey<'static> {
    LimitKey {
        ip: Some(IpAddr::V4(Ipv4Addr::from(n))),
        ..LimitKey::default()
    }
}
