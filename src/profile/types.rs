//! Checked value types: once constructed, a value is known to be well formed.
//!
//! Each `parse` returns a message suitable for a diagnostic and, where the user can fix
//! it, a hint; [`super::validate`] attaches the key path and location.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A problem with one value: what is wrong, and optionally how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub hint: Option<String>,
}

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// An RFC 1123 DNS label, lowercase: a hostname, a Kubernetes node name, a cluster name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let hint = "use 1-63 lowercase letters, digits and '-', starting and ending with a \
                    letter or digit (RFC 1123), e.g. \"worker-01\"";
        if s.is_empty() || s.len() > 63 {
            return Err(Invalid::new(format!(
                "\"{s}\" is not an RFC 1123 label: it must be 1-63 characters long"
            ))
            .hint(hint));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            let what = if c.is_ascii_uppercase() {
                "an uppercase letter".to_string()
            } else {
                format!("'{c}'")
            };
            return Err(Invalid::new(format!(
                "\"{s}\" is not an RFC 1123 label: it contains {what}"
            ))
            .hint(hint));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(Invalid::new(format!(
                "\"{s}\" is not an RFC 1123 label: it starts or ends with '-'"
            ))
            .hint(hint));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SHA-256 digest, kept as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Sha256(String);

impl Sha256 {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let hint = "a sha256 is 64 hexadecimal digits, as printed by `sha256sum FILE`";
        if s.len() != 64 {
            return Err(Invalid::new(format!(
                "malformed sha256 \"{s}\": {} characters, expected 64",
                s.len()
            ))
            .hint(hint));
        }
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(
                Invalid::new(format!("malformed sha256 \"{s}\": not hexadecimal")).hint(hint),
            );
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
    /// From raw digest bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(hex::encode(bytes))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A size in bytes, written as "512MiB", "1GiB", "16M" or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

impl ByteSize {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let hint = "write a size like \"512MiB\", \"2GiB\" or \"260M\" (binary units)";
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| Invalid::new(format!("\"{s}\" is not a size")).hint(hint))?;
        let mult = match unit.trim() {
            "" | "B" => 1,
            "K" | "KiB" | "k" => KIB,
            "M" | "MiB" => MIB,
            "G" | "GiB" => GIB,
            "T" | "TiB" => 1024 * GIB,
            "KB" | "MB" | "GB" | "TB" => {
                return Err(
                    Invalid::new(format!("\"{s}\": decimal units are ambiguous here"))
                        .hint(format!("write \"{n}{}iB\" (binary units)", &unit[..1])),
                );
            }
            other => {
                return Err(Invalid::new(format!("\"{s}\": unknown unit \"{other}\"")).hint(hint));
            }
        };
        n.checked_mul(mult)
            .map(Self)
            .ok_or_else(|| Invalid::new(format!("\"{s}\" is too large")))
    }
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, m) in [
            ("TiB", 1024 * GIB),
            ("GiB", GIB),
            ("MiB", MIB),
            ("KiB", KIB),
        ] {
            if b >= m && b.is_multiple_of(m) {
                return write!(f, "{}{unit}", b / m);
            }
        }
        if b >= MIB {
            write!(f, "{:.1}MiB", b as f64 / MIB as f64)
        } else {
            write!(f, "{b}B")
        }
    }
}

/// An Ethernet MAC address, normalised to lowercase with colons.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Mac(String);

impl Mac {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        let ok = parts.len() == 6
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(Invalid::new(format!("\"{s}\" is not a MAC address"))
                .hint("write six hex byte pairs, e.g. \"dc:a6:32:01:02:03\""));
        }
        Ok(Self(parts.join(":").to_ascii_lowercase()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The part a node plays in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Control plane with embedded etcd; holds the VIP in turn.
    Server,
    /// Worker; joins through the VIP with the agent token only.
    Agent,
    /// The cluster load balancer (HAProxy in front of the servers' API); runs no K3s.
    #[serde(rename = "loadbalancer")]
    LoadBalancer,
}

impl FromStr for Role {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "server" => Ok(Role::Server),
            "agent" => Ok(Role::Agent),
            "loadbalancer" => Ok(Role::LoadBalancer),
            "load-balancer" | "lb" | "haproxy" => {
                Err(Invalid::new(format!("unknown role \"{s}\""))
                    .hint("write role = \"loadbalancer\""))
            }
            "worker" => Err(Invalid::new("unknown role \"worker\"")
                .hint("K3s calls workers \"agent\": write role = \"agent\"")),
            "master" | "control-plane" => {
                Err(Invalid::new(format!("unknown role \"{s}\"")).hint("write role = \"server\""))
            }
            _ => Err(Invalid::new(format!("unknown role \"{s}\""))
                .hint("role is \"server\", \"agent\" or \"loadbalancer\"")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Server => "server",
            Role::Agent => "agent",
            Role::LoadBalancer => "loadbalancer",
        })
    }
}

/// A Kubernetes taint "key[=value]:Effect".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Taint(String);

impl Taint {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let hint =
            "write \"key[=value]:Effect\" with Effect NoSchedule, PreferNoSchedule or NoExecute";
        let Some((kv, effect)) = s.rsplit_once(':') else {
            return Err(Invalid::new(format!("taint \"{s}\" has no effect")).hint(hint));
        };
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(
                Invalid::new(format!("taint \"{s}\": unknown effect \"{effect}\"")).hint(hint),
            );
        }
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        if key.is_empty() {
            return Err(Invalid::new(format!("taint \"{s}\" has an empty key")).hint(hint));
        }
        // The kubelet splits `--register-with-taints` on ',' and each taint on '=' and
        // ':': key and value follow the label grammar, so neither can hold those.
        if !super::validate::grammar::qualified_name(key) {
            return Err(Invalid::new(format!("taint {s:?}: {key:?} is not a Kubernetes key"))
                .hint("a taint key is [prefix/]name: letters, digits, '-', '_', '.', alphanumeric at both ends"));
        }
        if !super::validate::grammar::is_label_value(value) {
            return Err(Invalid::new(format!("taint {s:?}: {value:?} is not a Kubernetes value"))
                .hint("a taint value is up to 63 letters, digits, '-', '_', '.', alphanumeric at both ends"));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(Label::parse("worker-01").is_ok());
        for bad in ["", "-a", "a-", "Melchior", "a_b", "a.b", &"x".repeat(64)] {
            assert!(Label::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(ByteSize::parse("512MiB").unwrap().0, 512 * MIB);
        assert_eq!(ByteSize::parse("1G").unwrap().0, GIB);
        assert_eq!(ByteSize::parse("4096").unwrap().0, 4096);
        assert!(
            ByteSize::parse("12MB")
                .unwrap_err()
                .hint
                .unwrap()
                .contains("12MiB")
        );
        assert!(ByteSize::parse("lots").is_err());
        assert_eq!(ByteSize(260 * MIB).to_string(), "260MiB");
    }

    #[test]
    fn digests_macs_taints_roles() {
        assert!(Sha256::parse(&"A".repeat(64)).is_ok());
        assert!(Sha256::parse("abc").is_err());
        assert!(Sha256::parse(&"g".repeat(64)).is_err());
        assert_eq!(
            Mac::parse("DC-A6-32-01-02-03").unwrap().as_str(),
            "dc:a6:32:01:02:03"
        );
        assert!(Mac::parse("dc:a6:32:01:02").is_err());
        assert!(Taint::parse("gpu=true:NoSchedule").is_ok());
        assert!(Taint::parse("gpu=true").is_err());
        assert!(Taint::parse("gpu:Never").is_err());
        assert!(Taint::parse("a=b,c=d:NoSchedule").is_err());
        assert!(Taint::parse("a\nb=c:NoSchedule").is_err());
        assert!(Taint::parse("example.com/gpu=true:NoExecute").is_ok());
        assert_eq!("server".parse::<Role>().unwrap(), Role::Server);
        assert!(
            "worker"
                .parse::<Role>()
                .unwrap_err()
                .hint
                .unwrap()
                .contains("agent")
        );
    }
}
