//! Partition layout of a node image: offsets, sizes, labels and type GUIDs.
//!
//! Partitions start on 1 MiB boundaries (SD cards erase in large blocks; the GPT needs the
//! first 34 sectors). The image ends with 1 MiB of slack that holds the backup GPT. The
//! system partition is identical on every node, so its size can be known only once the
//! squashfs is built; `Layout::compute` is called by the plan with a fixed size when the
//! profile gives one, and by the build with the real one.
//!
//! Sizes are bounded by [`MAX_IMAGE_SIZE`] (validation enforces it for the profile's
//! sizes, [`Layout::try_compute`] for the squashfs the build measures), and every sum is
//! checked, so no input can overflow the arithmetic.

use serde::Serialize;
use uuid::Uuid;

use super::ids;
pub use crate::profile::MAX_IMAGE_SIZE;
use crate::profile::types::MIB;
use crate::profile::{ByteSize, PartitionTable};

pub const SECTOR: u64 = 512;
pub const ALIGN: u64 = MIB;

/// GPT type "Microsoft basic data": the Pi firmware reads FAT only from this type, not EFI System.
pub const TYPE_BASIC_DATA: Uuid = uuid::uuid!("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7");
/// GPT type "Linux filesystem data".
pub const TYPE_LINUX_FS: Uuid = uuid::uuid!("0FC63DAF-8483-4772-8E79-3D69D8477DE4");

/// What a partition is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PartRole {
    Boot,
    System,
    Data,
}

impl PartRole {
    pub fn label(self) -> &'static str {
        match self {
            PartRole::Boot => "bakery-boot",
            PartRole::System => "bakery-system",
            PartRole::Data => "bakery-data",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            PartRole::Boot => "boot",
            PartRole::System => "system",
            PartRole::Data => "data",
        }
    }
    pub fn gpt_type(self) -> Uuid {
        match self {
            PartRole::Boot => TYPE_BASIC_DATA,
            _ => TYPE_LINUX_FS,
        }
    }
    /// MBR system id: FAT32 (LBA) for boot, Linux for the rest.
    pub fn mbr_type(self) -> u8 {
        match self {
            PartRole::Boot => 0x0c,
            _ => 0x83,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub number: u32,
    pub role: PartRole,
    pub label: &'static str,
    pub type_guid: Uuid,
    pub guid: Uuid,
    pub mbr_type: String,
    /// Byte offset from the start of the image.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Partition {
    pub fn end(&self) -> u64 {
        // Cannot overflow: a layout ends within MAX_IMAGE_SIZE.
        self.start + self.size
    }
    pub fn first_lba(&self) -> u64 {
        self.start / SECTOR
    }
    pub fn sectors(&self) -> u64 {
        self.size / SECTOR
    }
}

/// Partition sizes whose image would not fit [`MAX_IMAGE_SIZE`].
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "an image of boot {boot}, system {system} and data {data} exceeds the maximum image size of {}",
    ByteSize(MAX_IMAGE_SIZE)
)]
pub struct TooLarge {
    pub boot: ByteSize,
    pub system: ByteSize,
    pub data: ByteSize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub table: PartitionTable,
    pub sector_size: u64,
    pub disk_guid: Uuid,
    /// MBR disk signature (used by the MBR layout and shown in `PARTUUID`s there).
    pub disk_signature: String,
    pub total_size: u64,
    pub partitions: Vec<Partition>,
}

impl Layout {
    /// Lay out boot, system and data partitions of the given sizes for one node.
    ///
    /// For sizes a validated profile allows (each within [`MAX_IMAGE_SIZE`] and their sum
    /// too, checked by `profile::validate`); sizes measured at build time go through
    /// [`Layout::try_compute`].
    pub fn compute(
        cluster: &str,
        node: &str,
        table: PartitionTable,
        boot: ByteSize,
        system: ByteSize,
        data: ByteSize,
    ) -> Layout {
        Self::try_compute(cluster, node, table, boot, system, data)
            .unwrap_or_else(|e| unreachable!("validated sizes fit the image: {e}"))
    }

    /// Lay out the partitions, or say why the image would exceed [`MAX_IMAGE_SIZE`].
    pub fn try_compute(
        cluster: &str,
        node: &str,
        table: PartitionTable,
        boot: ByteSize,
        system: ByteSize,
        data: ByteSize,
    ) -> Result<Layout, TooLarge> {
        let too_large = || TooLarge { boot, system, data };
        let mut start = ALIGN;
        let mut partitions = Vec::new();
        for (i, (role, size)) in [
            (PartRole::Boot, boot),
            (PartRole::System, system),
            (PartRole::Data, data),
        ]
        .into_iter()
        .enumerate()
        {
            let size = size
                .bytes()
                .div_ceil(ALIGN)
                .checked_mul(ALIGN)
                .ok_or_else(too_large)?;
            partitions.push(Partition {
                number: i as u32 + 1,
                role,
                label: role.label(),
                type_guid: role.gpt_type(),
                guid: ids::guid(cluster, node, role.name()),
                mbr_type: format!("0x{:02x}", role.mbr_type()),
                start,
                size,
            });
            start = start.checked_add(size).ok_or_else(too_large)?;
        }
        let total_size = start
            .checked_add(ALIGN)
            .filter(|t| *t <= MAX_IMAGE_SIZE)
            .ok_or_else(too_large)?;
        Ok(Layout {
            table,
            sector_size: SECTOR,
            disk_guid: ids::guid(cluster, node, "disk"),
            disk_signature: format!("{:08x}", ids::serial32(cluster, node, "mbr-signature")),
            total_size,
            partitions,
        })
    }

    pub fn part(&self, role: PartRole) -> &Partition {
        self.partitions
            .iter()
            .find(|p| p.role == role)
            .expect("every layout has boot, system and data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn extreme_sizes_are_refused_not_wrapped() {
        for big in [
            u64::MAX,
            u64::MAX - MIB + 2,
            MAX_IMAGE_SIZE,
            17_592_186_044_415 * MIB,
        ] {
            for (b, s, d) in [(big, MIB, MIB), (MIB, big, MIB), (MIB, MIB, big)] {
                let r = Layout::try_compute(
                    "c",
                    "n",
                    PartitionTable::Mbr,
                    ByteSize(b),
                    ByteSize(s),
                    ByteSize(d),
                );
                assert!(r.is_err(), "{b} {s} {d} laid out");
            }
        }
        // The largest image allowed is laid out exactly.
        let l = Layout::try_compute(
            "c",
            "n",
            PartitionTable::Gpt,
            ByteSize(MIB),
            ByteSize(MIB),
            ByteSize(MAX_IMAGE_SIZE - 4 * MIB),
        )
        .unwrap();
        assert_eq!(l.total_size, MAX_IMAGE_SIZE);
    }

    proptest! {
        #[test]
        fn partitions_aligned_disjoint_and_fit(boot in 260u64..2048, system in 1u64..8192, data in 1u64..4096, node in "[a-z]{1,12}") {
            let l = Layout::compute("c", &node, PartitionTable::Gpt, ByteSize(boot * MIB), ByteSize(system * MIB + 123), ByteSize(data * MIB));
            let mut prev_end = 34 * SECTOR; // protective MBR + primary GPT
            for p in &l.partitions {
                prop_assert_eq!(p.start % ALIGN, 0);
                prop_assert_eq!(p.size % ALIGN, 0);
                prop_assert!(p.start >= prev_end, "overlap");
                prev_end = p.end();
            }
            // The backup GPT (33 sectors) must fit after the last partition.
            prop_assert!(l.total_size >= prev_end + 33 * SECTOR);
            prop_assert!(l.part(PartRole::System).size >= system * MIB + 123);
        }

        #[test]
        fn any_sizes_lay_out_or_are_refused(boot: u64, system: u64, data: u64) {
            match Layout::try_compute("c", "n", PartitionTable::Gpt, ByteSize(boot), ByteSize(system), ByteSize(data)) {
                Ok(l) => {
                    prop_assert!(l.total_size <= MAX_IMAGE_SIZE);
                    prop_assert!(l.partitions.iter().all(|p| p.end() < l.total_size));
                }
                Err(e) => prop_assert!(e.to_string().contains("maximum image size")),
            }
        }

        #[test]
        fn ids_stable_and_distinct(a in "[a-z]{1,8}", b in "[a-z]{1,8}") {
            let la = Layout::compute("c", &a, PartitionTable::Gpt, ByteSize(512 * MIB), ByteSize(MIB), ByteSize(MIB));
            let la2 = Layout::compute("c", &a, PartitionTable::Gpt, ByteSize(512 * MIB), ByteSize(MIB), ByteSize(MIB));
            prop_assert_eq!(&la, &la2);
            let guids: std::collections::HashSet<_> = la.partitions.iter().map(|p| p.guid).chain([la.disk_guid]).collect();
            prop_assert_eq!(guids.len(), 4);
            if a != b {
                let lb = Layout::compute("c", &b, PartitionTable::Gpt, ByteSize(512 * MIB), ByteSize(MIB), ByteSize(MIB));
                prop_assert_ne!(la.disk_guid, lb.disk_guid);
                prop_assert_ne!(la.partitions[0].guid, lb.partitions[0].guid);
            }
        }
    }
}
