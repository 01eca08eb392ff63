//! The items of the secrets state: what each one is, which files hold it, how it is
//! generated and what rotating it breaks.
//!
//! Every item is generated as a whole from a CSPRNG (seedable for tests) and a creation
//! time; the store ([`super::secrets`]) writes and reads the files.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use time::OffsetDateTime;

use super::pki::{self, CA_FILES, CertKey};

/// One rotatable piece of the secrets state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Item {
    /// The K3s server token's password (`K10<hash>::server:<password>`).
    Token,
    /// The K3s agent token's password (`K10<hash>::node:<password>`).
    AgentToken,
    /// The K3s CA set (11 files under `tls/`).
    Ca,
    /// The admin client certificate for `out/kubeconfig`.
    Admin,
    /// `/etc/rancher/node/password` of one node.
    NodePassword(String),
    /// The SSH ed25519 host key of one node.
    HostKey(String),
    /// The keepalived VRRP authentication password.
    Keepalived,
    /// The MySQL root and WordPress user passwords.
    Mysql,
}

impl Item {
    /// The items a profile needs, in listing order.
    pub fn required<'a>(nodes: impl Iterator<Item = &'a str>) -> Vec<Item> {
        let mut v = vec![Item::Token, Item::AgentToken, Item::Ca, Item::Admin];
        for n in nodes {
            v.push(Item::NodePassword(n.to_owned()));
            v.push(Item::HostKey(n.to_owned()));
        }
        v.extend([Item::Keepalived, Item::Mysql]);
        v
    }

    /// The name used by `bakery-image secrets --rotate NAME`.
    pub fn name(&self) -> String {
        match self {
            Item::Token => "token".into(),
            Item::AgentToken => "agent-token".into(),
            Item::Ca => "ca".into(),
            Item::Admin => "admin".into(),
            Item::NodePassword(n) => format!("node-password/{n}"),
            Item::HostKey(n) => format!("host-key/{n}"),
            Item::Keepalived => "keepalived".into(),
            Item::Mysql => "mysql".into(),
        }
    }

    /// Parse a name given on the command line.
    pub fn parse(s: &str) -> Option<Item> {
        Some(match s {
            "token" => Item::Token,
            "agent-token" => Item::AgentToken,
            "ca" => Item::Ca,
            "admin" => Item::Admin,
            "keepalived" => Item::Keepalived,
            "mysql" => Item::Mysql,
            _ => match s.split_once('/') {
                Some(("node-password", n)) if !n.is_empty() => Item::NodePassword(n.into()),
                Some(("host-key", n)) if !n.is_empty() => Item::HostKey(n.into()),
                _ => return None,
            },
        })
    }

    /// What kind of secret it is, for listings.
    pub fn kind(&self) -> &'static str {
        match self {
            Item::Token | Item::AgentToken => "k3s token password",
            Item::Ca => "CA set (5 ECDSA P-256 CAs + RSA-2048 service key)",
            Item::Admin => "client certificate (CN system:admin, O system:masters)",
            Item::NodePassword(_) => "k3s node password",
            Item::HostKey(_) => "ssh-ed25519 host key",
            Item::Keepalived => "VRRP auth password",
            Item::Mysql => "MySQL passwords (root, wordpress)",
        }
    }

    /// Files of the item, relative to the secrets directory.
    pub fn files(&self) -> Vec<String> {
        match self {
            Item::Token => vec!["k3s/token-password".into()],
            Item::AgentToken => vec!["k3s/agent-token-password".into()],
            Item::Ca => CA_FILES.iter().map(|f| format!("tls/{f}")).collect(),
            Item::Admin => vec!["admin/admin.crt".into(), "admin/admin.key".into()],
            Item::NodePassword(n) => vec![format!("nodes/{n}/node-password")],
            Item::HostKey(n) => vec![
                format!("nodes/{n}/ssh_host_ed25519_key"),
                format!("nodes/{n}/ssh_host_ed25519_key.pub"),
            ],
            Item::Keepalived => vec!["keepalived/auth-pass".into()],
            Item::Mysql => vec!["mysql/root-password".into(), "mysql/password".into()],
        }
    }

    /// What rotating the item breaks (printed as a warning by `secrets --rotate`).
    pub fn breaks(&self) -> String {
        match self {
            Item::Token => "the server token also encrypts the cluster's bootstrap data in etcd: \
                running servers keep the old token, so a new one only suits a NEW cluster \
                (reflash every server) or must first be set with `k3s token rotate --new-token` \
                on a server; etcd snapshots taken before need the old token to be restored"
                .into(),
            Item::AgentToken => "nodes flashed with the old agent token can no longer join: \
                rebuild and reflash every node (servers carry it as agent-token-file)"
                .into(),
            Item::Ca => "a new CA is a new cluster: every node must be reflashed and the \
                cluster starts empty; the tokens (their CA hash) and the admin certificate \
                change too, old kubeconfigs stop working"
                .into(),
            Item::Admin => "the old kubeconfig stays valid until it expires (Kubernetes cannot \
                revoke client certificates); hand out the new out/kubeconfig"
                .into(),
            Item::NodePassword(n) => format!(
                "the cluster knows {n}'s old password: run `kubectl delete node {n}` before \
                 booting the reflashed card"
            ),
            Item::HostKey(n) => format!(
                "ssh clients will report a changed host key for {n}: update known_hosts from \
                 out/known_hosts"
            ),
            Item::Keepalived => "servers with different VRRP passwords ignore each other: \
                reflash all servers together"
                .into(),
            Item::Mysql => "MySQL keeps the passwords it was initialised with: WordPress loses \
                its database until you set the new password inside MySQL"
                .into(),
        }
    }
}

/// Randomness and the creation time for new items.
pub struct Gen {
    pub rng: ChaCha20Rng,
    pub now: OffsetDateTime,
}

impl std::fmt::Debug for Gen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gen")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Gen {
    /// Operating-system randomness, the current time.
    pub fn os() -> Self {
        Self {
            rng: ChaCha20Rng::from_entropy(),
            now: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        }
    }
    /// Deterministic (tests): a seeded stream and a fixed time (2026-01-01T00:00:00Z).
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: ChaCha20Rng::seed_from_u64(seed),
            now: OffsetDateTime::from_unix_timestamp(1_767_225_600).expect("valid time"),
        }
    }

    /// `len` characters from [a-zA-Z0-9] (no shell, YAML or token separators).
    pub fn password(&mut self, len: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| A[self.rng.gen_range(0..A.len())] as char)
            .collect()
    }

    /// `bytes` random bytes as lowercase hex.
    pub fn hex(&mut self, bytes: usize) -> String {
        let mut b = vec![0u8; bytes];
        self.rng.fill_bytes(&mut b);
        hex::encode(b)
    }
}

/// Generate the files of `item`. `client_ca` is needed for [`Item::Admin`].
pub fn generate(
    item: &Item,
    g: &mut Gen,
    client_ca: Option<&CertKey>,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let files = item.files();
    let one = |v: String| vec![(files[0].clone(), v.into_bytes())];
    Ok(match item {
        Item::Token | Item::AgentToken => one(g.password(32)),
        Item::NodePassword(_) => one(g.hex(16)),
        // keepalived uses only the first 8 characters of auth_pass.
        Item::Keepalived => one(g.password(8)),
        Item::Mysql => vec![
            (files[0].clone(), g.password(32).into_bytes()),
            (files[1].clone(), g.password(32).into_bytes()),
        ],
        Item::Ca => pki::generate_ca_set(&mut g.rng, g.now)?
            .into_iter()
            .map(|(f, pem)| (format!("tls/{f}"), pem.into_bytes()))
            .collect(),
        Item::Admin => {
            let ca = client_ca.ok_or_else(|| anyhow::anyhow!("the client CA is missing"))?;
            let a = pki::issue_admin(ca, &mut g.rng, g.now)?;
            vec![
                (files[0].clone(), a.cert_pem.into_bytes()),
                (files[1].clone(), a.key_pem.into_bytes()),
            ]
        }
        Item::HostKey(n) => {
            let mut k = ssh_key::PrivateKey::random(&mut g.rng, ssh_key::Algorithm::Ed25519)
                .map_err(|e| anyhow::anyhow!("generating the ssh host key of {n}: {e}"))?;
            k.set_comment(format!("root@{n}"));
            let private = k
                .to_openssh(ssh_key::LineEnding::LF)
                .map_err(|e| anyhow::anyhow!("encoding the ssh host key of {n}: {e}"))?;
            let mut public = k
                .public_key()
                .to_openssh()
                .map_err(|e| anyhow::anyhow!("encoding the ssh host key of {n}: {e}"))?;
            public.push('\n');
            vec![
                (files[0].clone(), private.as_bytes().to_vec()),
                (files[1].clone(), public.into_bytes()),
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for i in Item::required(["a", "b"].into_iter()) {
            assert_eq!(Item::parse(&i.name()), Some(i.clone()));
            assert!(!i.files().is_empty());
        }
        assert_eq!(Item::parse("host-key/"), None);
        assert_eq!(Item::parse("tokens"), None);
    }

    #[test]
    fn seeded_generation_is_deterministic() {
        let a = generate(&Item::HostKey("n".into()), &mut Gen::seeded(7), None).unwrap();
        let b = generate(&Item::HostKey("n".into()), &mut Gen::seeded(7), None).unwrap();
        assert_eq!(a, b);
        assert_eq!(Gen::seeded(1).password(32).len(), 32);
    }
}
