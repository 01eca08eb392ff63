//! GPT with a protective MBR, written from the plan's [`Layout`] into a sized image file.
//!
//! The `gpt` crate writes the primary and backup headers and tables; it takes the backup
//! position from the end of the device (so the file must already have its final size),
//! gives partitions random GUIDs (replaced here by the plan's) and leaves LBA 0 alone (the
//! protective MBR is written here).

use std::collections::BTreeMap;
use std::io::SeekFrom;

use anyhow::{Context, Result, ensure};
use gpt::disk::LogicalBlockSize;
use gpt::partition_types::{OperatingSystem, Type};

use crate::plan::Layout;
use crate::plan::layout::SECTOR;

/// Write the partition table of `layout` into `file` (already of the total size).
pub fn write_gpt<D: gpt::DiskDevice>(file: &mut D, layout: &Layout) -> Result<()> {
    let len = file.seek(SeekFrom::End(0))?;
    ensure!(
        len == layout.total_size,
        "image file is {len} bytes, the layout needs {}",
        layout.total_size
    );
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(&mut *file, Some(layout.disk_guid))
        .context("creating the GPT")?;
    for p in &layout.partitions {
        let ty = Type {
            guid: p.type_guid,
            os: OperatingSystem::None,
        };
        disk.add_partition_at(p.label, p.number, p.first_lba(), p.sectors(), ty, 0)
            .with_context(|| format!("adding partition {} ({})", p.number, p.label))?;
    }
    // Partition GUIDs from the plan, not random ones: reproducible, stable across reflashes.
    let mut parts: BTreeMap<u32, gpt::partition::Partition> = disk.take_partitions();
    for p in &layout.partitions {
        let entry = parts
            .get_mut(&p.number)
            .context("partition missing after adding it")?;
        entry.part_guid = p.guid;
    }
    disk.update_partitions(parts)
        .context("setting partition GUIDs")?;
    disk.write().context("writing the GPT")?;
    let total_lba = layout.total_size / SECTOR;
    let size = u32::try_from(total_lba - 1).unwrap_or(u32::MAX);
    gpt::mbr::ProtectiveMBR::with_lb_size(size)
        .overwrite_lba0(file)
        .context("writing the protective MBR")?;
    Ok(())
}
