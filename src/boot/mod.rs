//! Booting: board definitions, the bakery initramfs, the boot partition's board files,
//! the node runtime laid into the system image, and the QEMU runner.
//!
//! Inputs are the profile, its plan and the composed system tree; outputs are trees
//! (p1's board part, the runtime overlay) and, for `run`, a booted VM's verdict. Nothing
//! here runs a program of the system image on the host.

pub mod boards;
pub mod bootfiles;
pub mod console;
pub mod elf;
pub mod initramfs;
pub mod kmodindex;
pub mod modules;
pub mod pi5;
pub mod qemu;
pub mod run;
pub mod runtime;

pub use boards::BoardDef;
pub use bootfiles::{boot_tree, kernel_version};
pub use initramfs::{InitramfsInput, initramfs};
pub use run::{RunOptions, RunOutcome, run};
pub use runtime::{prepare_system, runtime_overlay};
