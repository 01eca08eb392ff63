//! A plain MBR (DOS) partition table for boards that cannot boot GPT (Pi 3, Zero 2 W).
//!
//! Three primary partitions from the plan's [`Layout`]: p1 FAT32 (LBA, type 0x0c, marked
//! active), p2 and p3 Linux (0x83), with the plan's disk signature. Linux and the Pi
//! firmware address partitions by LBA only, so CHS fields stay zero.

use anyhow::{Context, Result};

use crate::plan::layout::SECTOR;
use crate::plan::{Layout, PartRole};

/// Write the MBR of `layout` into LBA 0 of `file`.
pub fn write_mbr<D: std::io::Read + std::io::Write + std::io::Seek>(
    file: &mut D,
    layout: &Layout,
) -> Result<()> {
    let sig = u32::from_str_radix(&layout.disk_signature, 16)
        .with_context(|| format!("disk signature {:?}", layout.disk_signature))?;
    let mut mbr = mbrman::MBR::new_from(&mut *file, SECTOR as u32, sig.to_le_bytes())
        .context("creating the MBR")?;
    for p in &layout.partitions {
        let idx = p.number as usize;
        mbr[idx] = mbrman::MBRPartitionEntry {
            boot: if p.role == PartRole::Boot {
                mbrman::BOOT_ACTIVE
            } else {
                mbrman::BOOT_INACTIVE
            },
            first_chs: mbrman::CHS::empty(),
            sys: p.role.mbr_type(),
            last_chs: mbrman::CHS::empty(),
            starting_lba: u32::try_from(p.first_lba()).context("partition beyond 2 TiB")?,
            sectors: u32::try_from(p.sectors()).context("partition of 2 TiB or more")?,
        };
    }
    mbr.write_into(file).context("writing the MBR")?;
    Ok(())
}
