//! The due index's shards: open grants spread over a few partitions so sweeps query them
//! side by side.

use crate::domain::GrantId;

/// How many shards the due-time index spreads its writes over. Sweeps query each shard.
pub const DUE_SHARDS: u32 = 8;

/// The due-index shard of a grant: stable, and spread evenly by the id's hash.
pub fn due_shard(id: &GrantId) -> u32 {
    // FNV-1a: tiny, stable across releases and platforms, and plenty for spreading load.
    let hash = id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    u32::try_from(hash % u64::from(DUE_SHARDS)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;

    #[test]
    fn due_shards_spread_and_stay_put() {
        let mut counts = [0_u32; DUE_SHARDS as usize];
        for i in 0..800 {
            let id = GrantId::generate(Timestamp::from_unix_seconds(1_800_000_000 + i));
            counts[due_shard(&id) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 50), "uneven spread: {counts:?}");
        let id = GrantId::parse("0190c0de-0000-7000-8000-000000000001").unwrap();
        assert_eq!(due_shard(&id), due_shard(&id.clone()));
    }
}
