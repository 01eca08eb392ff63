//! Cluster assembly: the secrets state and everything a node needs under `bakery/` on its
//! boot partition to join an HA K3s cluster by itself.
//!
//! Inputs: the validated profile, its plan and the secrets directory. Outputs: one
//! [`stage::Tree`](crate::stage::Tree) per node ([`render_node`]) and the operator's
//! `kubeconfig` and `known_hosts` (written beside the images by the build, kubeconfig 0600).
//!
//! For the node runtime, beyond the boot contract of firmware/README.md:
//! - The init server carries `cluster-init: true` ALONE in
//!   `bakery/etc/rancher/k3s/config.yaml.d/12-init.yaml`. At first boot the runtime
//!   (bakery-join) joins the first cluster member it finds (our CA on `/cacerts` and past
//!   its etcd join, see `overlays/runtime/usr/lib/bakery/cluster.sh`): it installs
//!   `bakery/etc/rancher/k3s/join.yaml` as `/etc/rancher/k3s/config.yaml.d/30-join.yaml`
//!   with `@PEER@` replaced, drops `12-init.yaml` and does NOT install `bakery/tls/`. Only
//!   when every other server reports no cluster state (or `new_cluster=1` in sysconf.txt)
//!   does it keep `12-init.yaml` and copy `bakery/tls/*` (incl. `etcd/`) to
//!   `/var/lib/rancher/k3s/server/tls/` (keys 0600); otherwise it waits. Servers 2..n and
//!   agents write `30-join.yaml` the same way (overriding `server:` of `20-node.yaml`).
//!   Later boots: K3s ignores both once its etcd exists, so either is harmless.
//! - `bakery/etc/rancher/k3s/join.yaml` is not a drop-in itself (not in config.yaml.d).
//! - Scripts `bakery/etc/keepalived/*.sh` must be installed 0755 (FAT has no modes);
//!   secret files (token, agent-token, node password, ssh host key, keepalived.conf) 0600.
//! - Servers: `bakery/manifests/*` go to `/var/lib/rancher/k3s/server/manifests/`.

pub mod haproxy;
pub mod inventory;
pub mod items;
pub mod k3s;
pub mod keepalived;
pub mod kubeconfig;
pub mod manifests;
pub mod network;
pub mod pki;
pub mod render;
pub mod secrets;
pub mod yaml;

pub use items::Item;
pub use kubeconfig::{ApiServer, known_hosts, kubeconfig, kubeconfig_for};
pub use render::render_node;
pub use secrets::Secrets;
