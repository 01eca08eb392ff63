//! The control part of a `.deb` (`control.tar.*`): the `control` stanza for the dpkg
//! status database, `conffiles`, `md5sums`, and the maintainer scripts, which are read
//! (never run) so their effects can be applied declaratively.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::stage::ar::ArReader;
use crate::stage::decompress::decoder;

/// The members of `control.tar.*` we use, by name (`control`, `postinst`, ...).
#[derive(Debug, Clone, Default)]
pub struct Control {
    pub files: BTreeMap<String, String>,
}

impl Control {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.files.get(name).map(String::as_str)
    }
}

/// Read the control members of `deb`.
pub fn read_control(deb: &Path) -> Result<Control, String> {
    let f = fs_err::File::open(deb).map_err(|e| e.to_string())?;
    let not_deb = |e: std::io::Error| format!("{}: not a Debian package: {e}", deb.display());
    let mut ar = ArReader::new(BufReader::new(f)).map_err(not_deb)?;
    while let Some(member) = ar
        .next_member()
        .map_err(|e| format!("{}: {e}", deb.display()))?
    {
        if !member.name.starts_with("control.tar") {
            continue;
        }
        let (_, r) = decoder(BufReader::new(member)).map_err(|e| e.to_string())?;
        let mut tar = tar::Archive::new(r);
        let mut out = Control::default();
        for entry in tar.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| format!("{}: control.tar: {e}", deb.display()))?;
            let name = entry
                .path()
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_owned();
            if entry.header().entry_type().is_file() {
                let mut s = String::new();
                // Control files are text; a binary one is skipped, not fatal.
                if entry.read_to_string(&mut s).is_ok() {
                    out.files.insert(name, s);
                }
            }
        }
        return Ok(out);
    }
    Err(format!("{}: no control.tar member", deb.display()))
}
