//! Build outputs for the operator: `out/kubeconfig` (admin, server = the load balancer's
//! address when the profile has one, else the VIP; cluster,
//! user and context all named after the cluster so it merges into ~/.kube/config) and
//! `out/known_hosts` (every node's SSH host key by name and address).

use anyhow::Result;
use base64::Engine;

use super::secrets::Secrets;
use super::yaml::q;
use crate::profile::Profile;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Which address the kubeconfig's server names (`bakery-image kubeconfig --server`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiServer {
    /// The servers' VIP.
    Vip,
    /// The load balancer's registration address.
    LoadBalancer,
    /// One server, by hostname.
    Node(String),
}

impl ApiServer {
    /// "vip", "lb" or a server's hostname.
    pub fn parse(s: &str) -> Self {
        match s {
            "vip" => ApiServer::Vip,
            "lb" => ApiServer::LoadBalancer,
            n => ApiServer::Node(n.to_owned()),
        }
    }

    /// The address this choice names in `p`, or a user-facing reason with a hint.
    pub fn address(&self, p: &Profile) -> std::result::Result<std::net::Ipv4Addr, String> {
        let servers = || {
            p.servers()
                .map(|n| n.name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            ApiServer::Vip => Ok(p.cluster.vip),
            ApiServer::LoadBalancer => {
                p.loadbalancer.as_ref().map(|lb| lb.address).ok_or_else(|| {
                    "the profile has no load balancer (no role = \"loadbalancer\" node)\n\
                 hint: use --server vip, or a server's name"
                        .to_owned()
                })
            }
            ApiServer::Node(n) => match p.node(n) {
                Some(node) if node.role == crate::profile::Role::Server => node
                    .address
                    .ip()
                    .ok_or_else(|| format!("server {n} has no static address")),
                Some(node) => Err(format!(
                    "{n} is a{} {}, not a server: it serves no API\nhint: name a server ({})",
                    if node.role == crate::profile::Role::Agent {
                        "n"
                    } else {
                        ""
                    },
                    node.role,
                    servers()
                )),
                None => Err(format!(
                    "--server {n}: neither vip, lb nor a node of the profile\nhint: use vip, lb or a server's name ({})",
                    servers()
                )),
            },
        }
    }
}

/// The admin kubeconfig (holds the admin key: write it 0600); server = the registration
/// address (the load balancer's when the profile has one, else the VIP).
pub fn kubeconfig(p: &Profile, secrets: &Secrets) -> Result<String> {
    kubeconfig_for(p, secrets, p.registration_address())
}

/// The admin kubeconfig naming `server` as the API address (it must be in the servers'
/// certificate: the VIP, the load balancer's address or a server's own).
pub fn kubeconfig_for(
    p: &Profile,
    secrets: &Secrets,
    server: std::net::Ipv4Addr,
) -> Result<String> {
    let name = q(p.cluster.name.as_str());
    let admin = secrets.admin()?;
    Ok(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n  - name: {name}\n    cluster:\n      \
         server: {}\n      certificate-authority-data: {}\nusers:\n  - name: {name}\n    user:\n      \
         client-certificate-data: {}\n      client-key-data: {}\ncontexts:\n  - name: {name}\n    \
         context:\n      cluster: {name}\n      user: {name}\ncurrent-context: {name}\npreferences: {{}}\n",
        q(&format!("https://{server}:6443")),
        b64(secrets.server_ca_pem()?),
        b64(&admin.cert_pem),
        b64(&admin.key_pem),
    ))
}

/// known_hosts lines: `name[,address] ssh-ed25519 KEY` for every node.
pub fn known_hosts(p: &Profile, secrets: &Secrets) -> Result<String> {
    let mut s = String::new();
    for n in &p.nodes {
        let line = secrets.host_key_pub(n.name.as_str())?;
        let mut parts = line.split_whitespace();
        let (Some(alg), Some(key)) = (parts.next(), parts.next()) else {
            anyhow::bail!("the public host key of {} is malformed", n.name);
        };
        let hosts = match n.address.ip() {
            Some(a) => format!("{},{a}", n.name),
            None => n.name.to_string(),
        };
        s.push_str(&format!("{hosts} {alg} {key}\n"));
    }
    Ok(s)
}
