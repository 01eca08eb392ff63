//! The secrets state: one directory per profile (`profile.secrets_dir`, mode 0700, files
//! 0600), created by the first build and reused by every rebuild.
//!
//! [`Secrets::load_or_create`] reads what exists and adds only what is missing (a new node
//! gets a new node password and host key; nothing existing is touched). Values are
//! reachable through accessors and never through `Debug`, logs or errors. Tokens are
//! derived on load: `K10<sha256 of server-ca.crt>::server:<password>` and `::node:`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use time::OffsetDateTime;

use super::items::{self, Gen, Item};
use super::pki::{self, CertKey};
use crate::error::UserError;
use crate::profile::Profile;

/// Re-issue the admin certificate when it expires within this many days.
const ADMIN_RENEW_DAYS: i64 = 30;

/// The loaded secrets of one cluster.
pub struct Secrets {
    dir: Option<PathBuf>,
    files: BTreeMap<String, Vec<u8>>,
    mtimes: BTreeMap<String, i64>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("dir", &self.dir)
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Load the secrets of `p` from `dir`, creating the directory and any missing item.
    pub fn load_or_create(dir: &Path, p: &Profile) -> Result<Secrets> {
        Self::load_or_create_with(dir, p, &mut Gen::os())
    }

    /// As [`Self::load_or_create`] with deterministic generation (tests only).
    #[doc(hidden)]
    pub fn load_or_create_seeded(dir: &Path, p: &Profile, seed: u64) -> Result<Secrets> {
        Self::load_or_create_with(dir, p, &mut Gen::seeded(seed))
    }

    /// Fixed secrets held in memory only (tests): the same seed gives the same passwords
    /// and SSH keys (ECDSA keys and signatures still vary).
    pub fn generate_with_rng(seed: u64, p: &Profile) -> Result<Secrets> {
        let mut s = Secrets::empty(None);
        s.fill(p, &mut Gen::seeded(seed))?;
        Ok(s)
    }

    fn empty(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            files: BTreeMap::new(),
            mtimes: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    fn load_or_create_with(dir: &Path, p: &Profile, g: &mut Gen) -> Result<Secrets> {
        let mut s = Secrets::open_or_create(dir)?;
        s.fill(p, g)?;
        s.warnings.extend(git_warning(dir));
        for w in &s.warnings {
            tracing::warn!("{w}");
        }
        Ok(s)
    }

    /// Read an existing secrets directory without creating anything (for listings).
    pub fn open(dir: &Path) -> Result<Option<Secrets>> {
        if !dir.exists() {
            return Ok(None);
        }
        let mut s = Secrets::empty(Some(dir.to_owned()));
        s.read_dir(dir, "")?;
        s.warnings.extend(git_warning(dir));
        Ok(Some(s))
    }

    fn open_or_create(dir: &Path) -> Result<Secrets> {
        if !dir.exists() {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs_err::create_dir_all(parent)?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating the secrets directory {}", dir.display()))?;
            tracing::info!("created the secrets directory {}", dir.display());
        }
        let mut s = Secrets::empty(Some(dir.to_owned()));
        let mode = fs_err::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            s.warnings.push(format!(
                "secrets directory {} was readable by others (mode {:o}); set to 0700",
                dir.display(),
                mode & 0o777
            ));
        }
        s.read_dir(dir, "")?;
        Ok(s)
    }

    fn read_dir(&mut self, root: &Path, rel: &str) -> Result<()> {
        let here = root.join(rel);
        let mut entries: Vec<_> = fs_err::read_dir(&here)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let md = fs_err::metadata(e.path())?;
            if md.is_dir() {
                self.read_dir(root, &r)?;
            } else if md.is_file() {
                if md.permissions().mode() & 0o077 != 0 {
                    fs_err::set_permissions(e.path(), std::fs::Permissions::from_mode(0o600))?;
                    self.warnings.push(format!(
                        "secret file {r} was readable by others; set to 0600"
                    ));
                }
                let mtime = md
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs() as i64);
                self.files.insert(r.clone(), fs_err::read(e.path())?);
                self.mtimes.insert(r, mtime);
            }
        }
        Ok(())
    }

    /// Add every item `p` needs that is missing; re-issue an expiring admin certificate.
    fn fill(&mut self, p: &Profile, g: &mut Gen) -> Result<()> {
        let mut ca_created = false;
        for item in Item::required(p.nodes.iter().map(|n| n.name.as_str())) {
            let files = item.files();
            let present = files.iter().filter(|f| self.files.contains_key(*f)).count();
            let renew = match &item {
                Item::Admin if present == files.len() => {
                    ca_created || self.admin_expires_before(g.now)?
                }
                _ => false,
            };
            if present == files.len() && !renew {
                continue;
            }
            if present != 0 && !renew {
                return Err(UserError(format!(
                    "secrets item \"{}\" in {} is incomplete: {} of {} files exist \
                     ({})\nhint: restore the directory from your backup, or start the item \
                     afresh with `bakery-image secrets PROFILE --rotate {}` (it {})",
                    item.name(),
                    self.dir_display(),
                    present,
                    files.len(),
                    files.join(", "),
                    item.name(),
                    item.breaks()
                ))
                .into());
            }
            if renew {
                self.warnings.push(
                    "the admin client certificate is expiring or its CA changed; issued a new \
                     one (the next out/kubeconfig carries it)"
                        .into(),
                );
            }
            let ca = match item {
                Item::Admin => Some(self.ca_pair("client-ca")?),
                _ => None,
            };
            let new = items::generate(&item, g, ca.as_ref())
                .with_context(|| format!("generating secrets item \"{}\"", item.name()))?;
            for (f, content) in new {
                self.store(&f, content, g.now.unix_timestamp())?;
            }
            if item == Item::Ca {
                ca_created = true;
            }
        }
        Ok(())
    }

    /// Remove an item's files and generate it afresh (the CA also re-issues the admin cert).
    pub fn rotate(dir: &Path, p: &Profile, item: &Item) -> Result<Secrets> {
        let mut s = Secrets::open_or_create(dir)?;
        let mut drop = item.files();
        if *item == Item::Ca {
            drop.extend(Item::Admin.files());
        }
        for f in drop {
            let path = dir.join(&f);
            if path.exists() {
                fs_err::remove_file(&path)?;
            }
            s.files.remove(&f);
        }
        s.fill(p, &mut Gen::os())?;
        s.warnings.extend(git_warning(dir));
        Ok(s)
    }

    fn store(&mut self, rel: &str, content: Vec<u8>, mtime: i64) -> Result<()> {
        if let Some(dir) = &self.dir {
            write_secret(dir, rel, &content)?;
        }
        self.files.insert(rel.to_owned(), content);
        self.mtimes.insert(rel.to_owned(), mtime);
        Ok(())
    }

    fn dir_display(&self) -> String {
        self.dir
            .as_ref()
            .map_or("memory".into(), |d| d.display().to_string())
    }

    fn admin_expires_before(&self, now: OffsetDateTime) -> Result<bool> {
        let info = pki::cert_info(self.text("admin/admin.crt")?, "admin/admin.crt")?;
        Ok(info.not_after < now.unix_timestamp() + ADMIN_RENEW_DAYS * 86_400)
    }

    fn text(&self, rel: &str) -> Result<&str> {
        let b = self.files.get(rel).ok_or_else(|| {
            UserError(format!(
                "secret {rel} is missing from {}\nhint: run a build (it creates missing \
                 secrets) or restore the directory from your backup",
                self.dir_display()
            ))
        })?;
        std::str::from_utf8(b).map_err(|_| anyhow::anyhow!("secret {rel} is not UTF-8 text"))
    }

    fn ca_pair(&self, ca: &str) -> Result<CertKey> {
        Ok(CertKey {
            cert_pem: self.text(&format!("tls/{ca}.crt"))?.to_owned(),
            key_pem: self.text(&format!("tls/{ca}.key"))?.to_owned(),
        })
    }

    // ---- accessors -------------------------------------------------------------------

    /// Warnings collected while loading (permissions fixed, not git-ignored, renewals).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// The directory, if the secrets live on disk.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
    /// Relative path -> modification time (seconds) of every file read or written.
    pub fn file_times(&self) -> &BTreeMap<String, i64> {
        &self.mtimes
    }
    /// SHA-256 of `server-ca.crt` as K3s computes it for a single self-signed CA.
    pub fn ca_hash(&self) -> Result<String> {
        Ok(pki::ca_hash(self.text("tls/server-ca.crt")?.as_bytes()))
    }
    /// The full server token `K10<ca-hash>::server:<password>`.
    pub fn server_token(&self) -> Result<String> {
        Ok(format!(
            "K10{}::server:{}",
            self.ca_hash()?,
            self.text("k3s/token-password")?.trim()
        ))
    }
    /// The full agent token `K10<ca-hash>::node:<password>`.
    pub fn agent_token(&self) -> Result<String> {
        Ok(format!(
            "K10{}::node:{}",
            self.ca_hash()?,
            self.text("k3s/agent-token-password")?.trim()
        ))
    }
    /// The 11 CA files as (path under `server/tls/`, content).
    pub fn ca_files(&self) -> Result<Vec<(&'static str, &[u8])>> {
        pki::CA_FILES
            .iter()
            .map(|f| Ok((*f, self.text(&format!("tls/{f}"))?.as_bytes())))
            .collect()
    }
    /// The server CA certificate (what clients trust for the API).
    pub fn server_ca_pem(&self) -> Result<&str> {
        self.text("tls/server-ca.crt")
    }
    /// The admin client certificate and key.
    pub fn admin(&self) -> Result<CertKey> {
        Ok(CertKey {
            cert_pem: self.text("admin/admin.crt")?.to_owned(),
            key_pem: self.text("admin/admin.key")?.to_owned(),
        })
    }
    pub fn node_password(&self, node: &str) -> Result<&str> {
        Ok(self.text(&format!("nodes/{node}/node-password"))?.trim())
    }
    /// The OpenSSH private host key of a node.
    pub fn host_key(&self, node: &str) -> Result<&str> {
        self.text(&format!("nodes/{node}/ssh_host_ed25519_key"))
    }
    /// The public host key line of a node (ends with a newline).
    pub fn host_key_pub(&self, node: &str) -> Result<&str> {
        self.text(&format!("nodes/{node}/ssh_host_ed25519_key.pub"))
    }
    pub fn keepalived_auth(&self) -> Result<&str> {
        Ok(self.text("keepalived/auth-pass")?.trim())
    }
    pub fn mysql_root_password(&self) -> Result<&str> {
        Ok(self.text("mysql/root-password")?.trim())
    }
    pub fn mysql_password(&self) -> Result<&str> {
        Ok(self.text("mysql/password")?.trim())
    }

    /// Every secret value (passwords, tokens, private keys and their base64 bodies) for
    /// leak checks: none of these may appear in a non-secret output.
    pub fn secret_values(&self) -> Vec<String> {
        let mut v = Vec::new();
        for (rel, content) in &self.files {
            if rel.ends_with(".crt") || rel.ends_with(".pub") {
                continue;
            }
            let text = String::from_utf8_lossy(content).into_owned();
            if text.contains("-----BEGIN") {
                // The base64 lines of a key: any one of them leaking is a leak. The last
                // line of a body is left out: it may encode only public key bytes.
                let body: Vec<&str> = text.lines().filter(|l| !l.starts_with("-----")).collect();
                v.extend(
                    body.iter()
                        .take(body.len().saturating_sub(1))
                        .map(|l| (*l).to_owned()),
                );
            } else {
                v.push(text.trim().to_owned());
            }
        }
        if let (Ok(a), Ok(b)) = (self.server_token(), self.agent_token()) {
            v.extend([a, b]);
        }
        v.retain(|s| !s.is_empty());
        v
    }
}

/// Write one secret file (0600) in a 0700 directory tree, atomically.
fn write_secret(dir: &Path, rel: &str, content: &[u8]) -> Result<()> {
    let path = dir.join(rel);
    let parent = path.parent().expect("a file has a parent");
    let mut cur = dir.to_path_buf();
    for c in Path::new(rel)
        .parent()
        .into_iter()
        .flat_map(|p| p.components())
    {
        cur.push(c);
        if !cur.exists() {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&cur)
                .with_context(|| format!("creating {}", cur.display()))?;
        }
    }
    let tmp = parent.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(content)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs_err::rename(&tmp, &path)?;
    Ok(())
}

/// A warning when `dir` is inside a git work tree and not ignored (no git: no warning).
pub fn git_warning(dir: &Path) -> Option<String> {
    let cwd = match dir.parent()? {
        p if p.as_os_str().is_empty() => Path::new("."),
        p => p,
    };
    let target = Path::new(dir.file_name()?);
    let argv = ["git", "check-ignore", "-q", "--"];
    tracing::debug!(?argv, ?target, cwd = %cwd.display(), "running");
    let st = std::process::Command::new("git")
        .args(&argv[1..])
        .arg(target)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    // 0: ignored; 1: not ignored; 128: not a work tree (or another error).
    (st.code() == Some(1)).then(|| {
        format!(
            "the secrets directory {} is inside a git work tree and not ignored: committing \
             it would publish the cluster's keys\nhint: add it to .gitignore",
            dir.display()
        )
    })
}
