//! For `bench/run.sh`: the time of one Argon2id hash with the parameters
//! palisade uses by default (OWASP: m=19456 KiB, t=2, p=1), computed by
//! palisade's own hasher on one core. Prints the median of N runs in
//! milliseconds (default 10).
//!
//! Usage: `hash_time [N]`.

use std::time::Instant;

use palisade::auth::hashing::Hasher;
use palisade::settings::Argon2Settings;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(10), |n| n.parse())?;
    let owasp = Argon2Settings {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
    let hasher = Hasher::new(owasp, 1, 0)?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        hasher
            .hash("correct horse battery staple".to_owned())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("{:.3}", times[times.len() / 2]);
    Ok(())
}
