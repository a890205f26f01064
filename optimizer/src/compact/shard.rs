//! `compact --shard I/N`: N workers split one table's compaction with no coordinator. Every
//! worker plans the same way and takes the groups whose partition hashes to its shard, so
//! their work is disjoint whatever snapshot each planned from; their commits rebase on each
//! other like any concurrent commits. The hash is FNV-1a over the partition's path
//! (`ts_day=2026-11-01/id_bucket=3`), the same in every process and version. An unpartitioned
//! table is one partition: one shard does all of it.

/// This worker's share: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` (0 ≤ I < N).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let usage = || format!("--shard {text:?}: write I/N with 0 <= I < N, e.g. 0/3, 1/3 and 2/3 for three workers");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: u32 = index.trim().parse().map_err(|_| usage())?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        if count == 0 || index >= count {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }

    /// Shard `JOB_COMPLETION_INDEX` of `count` (a Kubernetes Indexed Job's pod).
    pub fn from_job_index(count: u32) -> Result<Shard, String> {
        let index = std::env::var("JOB_COMPLETION_INDEX").map_err(|_| {
            "--shard-count: JOB_COMPLETION_INDEX is not set (it is in the pods of a Kubernetes Indexed Job); \
             elsewhere pass --shard I/N"
                .to_string()
        })?;
        Shard::parse(&format!("{index}/{count}"))
    }

    /// Whether this shard compacts the partition with this path.
    pub fn owns(&self, partition: &str) -> bool {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in partition.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash % u64::from(self.count) == u64::from(self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_partition_belongs_to_exactly_one_shard() {
        let partitions: Vec<String> =
            (1..=3).flat_map(|d| (0..4).map(move |b| format!("ts_day=2026-11-0{d}/id_bucket={b}"))).collect();
        let shards: Vec<Shard> = (0..3).map(|i| Shard::parse(&format!("{i}/3")).expect("shard")).collect();
        for p in &partitions {
            assert_eq!(shards.iter().filter(|s| s.owns(p)).count(), 1, "{p}");
        }
        assert!(shards.iter().all(|s| partitions.iter().any(|p| s.owns(p))), "each shard gets work here");
        // Stable across processes and versions: a fixed value.
        assert!(Shard { index: 0, count: 1 }.owns("anything"));
        assert_eq!(
            (0..3).find(|i| Shard { index: *i, count: 3 }.owns("ts_day=2026-11-01/id_bucket=0")),
            Some(fnv_index("ts_day=2026-11-01/id_bucket=0", 3))
        );
    }

    fn fnv_index(text: &str, count: u64) -> u32 {
        let mut hash: u64 = 14_695_981_039_346_656_037;
        for byte in text.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(1_099_511_628_211);
        }
        (hash % count) as u32
    }

    #[test]
    fn bad_shards_say_how_to_write_them() {
        for bad in ["3/3", "1", "a/3", "0/0", "-1/2"] {
            assert!(Shard::parse(bad).expect_err(bad).contains("I/N"), "{bad}");
        }
        assert_eq!(Shard::parse(" 2 / 5 "), Ok(Shard { index: 2, count: 5 }));
    }
}
