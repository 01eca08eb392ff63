//! Build outputs for the operator: `out/kubeconfig` (admin, server = the VIP; cluster,
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

/// The admin kubeconfig (holds the admin key: write it 0600).
pub fn kubeconfig(p: &Profile, secrets: &Secrets) -> Result<String> {
    let name = q(p.cluster.name.as_str());
    let admin = secrets.admin()?;
    Ok(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n  - name: {name}\n    cluster:\n      \
         server: {}\n      certificate-authority-data: {}\nusers:\n  - name: {name}\n    user:\n      \
         client-certificate-data: {}\n      client-key-data: {}\ncontexts:\n  - name: {name}\n    \
         context:\n      cluster: {name}\n      user: {name}\ncurrent-context: {name}\npreferences: {{}}\n",
        q(&format!("https://{}:6443", p.cluster.vip)),
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
