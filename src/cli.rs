//! Command-line interface: clap types only. The dispatcher in [`crate::app`] turns these
//! into calls on the library; nothing below this module imports clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  invalid input the user can fix: the command line, a profile, source, base image or archive
  2  I/O or tool failure: a file that cannot be read or written, a failing external tool";

#[derive(Debug, Parser)]
#[command(name = "bakery-image", version, about = "Bake immutable, self-assembling K3s cluster images for Raspberry Pi and QEMU", after_help = EXIT_CODES)]
pub struct Cli {
    /// More output: -v adds debug lines (every external command), -vv those of libraries too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Validate a profile and print the plan: nodes, roles, join order, quorum, artifacts.
    #[command(after_help = EXIT_CODES)]
    Check(ProfileArgs),
    /// Print the plan of a profile.
    #[command(after_help = EXIT_CODES)]
    Plan(PlanArgs),
    /// List the cluster's secrets (names, kinds, fingerprints; never values) or rotate one.
    #[command(after_help = EXIT_CODES)]
    Secrets(SecretsArgs),
    /// Print the admin kubeconfig (from the existing secrets) naming the API address of
    /// your choice: --server vip, lb (the load balancer) or a server's name.
    Kubeconfig(KubeconfigArgs),
    /// Download and verify every part the profile pins into the cache, without building.
    #[command(after_help = EXIT_CODES)]
    Fetch(FetchArgs),
    /// Build one image per node, with checksums, an Imager list and build.json.
    #[command(after_help = EXIT_CODES)]
    Build(BuildArgs),
    /// Resolve the Debian base anew against the mirror and rewrite `<profile>.lock`.
    #[command(after_help = EXIT_CODES)]
    Update(UpdateArgs),
    /// Show an image's partitions, filesystems and node config, and verify its checksums.
    #[command(after_help = EXIT_CODES)]
    Inspect(InspectArgs),
    /// Boot a node image in QEMU (TCG), as it would be flashed; --check waits for the ready marker.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Print the JSON Schema of profiles (for editor completion and validation).
    Schema,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The cluster profile (TOML).
    pub profile: PathBuf,
}

#[derive(Debug, Args)]
pub struct KubeconfigArgs {
    /// The cluster profile (TOML); its secrets directory must exist (run build first).
    pub profile: PathBuf,
    /// The API address: "vip", "lb" (the load balancer) or a server's hostname [default:
    /// lb when the profile has a load balancer, else vip; what out/kubeconfig names].
    #[arg(long, value_name = "vip|lb|NODE")]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The cluster profile (TOML).
    pub profile: PathBuf,
    /// Machine-readable JSON with stable field names (the only format for now).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// The cluster profile (TOML).
    pub profile: PathBuf,
    /// Generate ITEM afresh (token, agent-token, ca, admin, node-password/NODE,
    /// host-key/NODE, keepalived, mysql); prints what this breaks.
    #[arg(long, value_name = "ITEM")]
    pub rotate: Option<String>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The cluster profile (TOML).
    pub profile: PathBuf,
    /// Use only the cache: fail, listing every part that is missing, instead of downloading.
    #[arg(long)]
    pub offline: bool,
    /// The download cache [default: $BAKERY_CACHE_DIR, else $XDG_CACHE_HOME/bakery-image,
    /// else ~/.cache/bakery-image].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The cluster profile (TOML) with a [sources.debian] section.
    pub profile: PathBuf,
    /// The download cache [default: $BAKERY_CACHE_DIR, else $XDG_CACHE_HOME/bakery-image,
    /// else ~/.cache/bakery-image].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The cluster profile (TOML).
    pub profile: PathBuf,
    /// Output directory (default: "out" next to the profile).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Build only this node (repeatable).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Use only local and cached parts; never download.
    #[arg(long)]
    pub offline: bool,
    /// The download cache [default: $BAKERY_CACHE_DIR, else $XDG_CACHE_HOME/bakery-image,
    /// else ~/.cache/bakery-image].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image: .img, .img.xz or .img.zst.
    pub image: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The node image (.img, .img.xz or .img.zst). Raw images are booted in place: the
    /// VM's writes persist (use --snapshot to discard them).
    pub image: PathBuf,
    /// The QEMU machine, from the image's board definition: virt (the default for rpi and
    /// qemu-aarch64), raspi4b (QEMU >= 9: the Pi 4's device tree, SD controller and PL011),
    /// raspi3b (MBR images), q35 (qemu-x86_64).
    #[arg(long, value_name = "MACHINE")]
    pub machine: Option<String>,
    /// Guest memory in MiB (the Pi models' memory is fixed: 2048 on raspi4b, 1024 on raspi3b).
    #[arg(long, default_value_t = 1024)]
    pub memory: u32,
    /// Guest network: none; user (QEMU user networking, restricted: no traffic leaves
    /// it); or vde:SOCKET, a port on a vde_switch (one private L2 shared by several VMs).
    #[arg(long, default_value = "user", value_name = "none|user|vde:SOCKET")]
    pub net: String,
    /// The NIC's MAC address, e.g. 52:54:00:99:00:01 (distinct per VM on one switch).
    #[arg(long, value_name = "MAC")]
    pub mac: Option<String>,
    /// Give up after this many seconds (with --check).
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Wait for `bakery: ready` or a failure marker, power off, exit 0 (ready) or 1.
    #[arg(long)]
    pub check: bool,
    /// Extra kernel parameters, e.g. --append bakery.selftest=1 (repeatable).
    #[arg(long, value_name = "PARAM")]
    pub append: Vec<String>,
    /// Grow the disk to this size first (like flashing to a bigger card), e.g. 2G.
    #[arg(long, value_name = "SIZE")]
    pub disk_size: Option<String>,
    /// Discard the VM's writes to the disk.
    #[arg(long)]
    pub snapshot: bool,
    /// Attach a raw file as a further disk, like a USB SSD next to the card (repeatable;
    /// the Nth appears as /dev/disk/by-id/virtio-bakery-extra-N). Writes persist.
    #[arg(long, value_name = "FILE")]
    pub extra_disk: Vec<PathBuf>,
    /// Simulate a power cut: kill QEMU as soon as a console line contains TEXT, then exit
    /// 0 (with --check; tests of first-boot recovery).
    #[arg(long, value_name = "TEXT", requires = "check")]
    pub power_cut_on: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
