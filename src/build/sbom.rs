//! The SBOM of the system image: an SPDX 2.3 JSON document listing every Debian package
//! of an assembled base (name, version, architecture, source package, sha256 of the
//! `.deb`, a `pkg:deb` purl) and every other part laid into the system (k3s, packages
//! and images given as files), each with its sha256.
//!
//! Reproducible: no random namespace and no wall-clock time; both derive from the
//! content and the build timestamp. Download locations are not recorded (a local mirror
//! URL says nothing to a reader), the purl names the package instead.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::debian::lock::LockFile;
use crate::fetch::Fetched;

fn spdx_id(i: usize, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-Package-{i}-{clean}")
}

/// The SPDX document for a system image named `name`.
pub fn sbom(name: &str, lock: Option<&LockFile>, parts: &[Fetched], created: &str) -> String {
    let mut packages = Vec::new();
    for p in lock.map(|l| l.packages.as_slice()).unwrap_or_default() {
        let purl = format!(
            "pkg:deb/debian/{}@{}?arch={}&distro={}",
            p.name,
            p.version.replace(':', "%3A").replace('+', "%2B"),
            p.arch,
            p.suite
        );
        packages.push(json!({
            "SPDXID": spdx_id(packages.len(), &p.name),
            "name": p.name,
            "versionInfo": p.version,
            "supplier": "Organization: Debian",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "sourceInfo": format!("built from Debian source package {} {}", p.source, p.source_version),
            "checksums": [{"algorithm": "SHA256", "checksumValue": p.sha256}],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }],
        }));
    }
    for f in parts {
        packages.push(json!({
            "SPDXID": spdx_id(packages.len(), &f.role),
            "name": f.role,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "checksums": [{"algorithm": "SHA256", "checksumValue": f.sha256.as_str()}],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        }));
    }
    let relationships: Vec<Value> = packages
        .iter()
        .map(|p| {
            json!({
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": p["SPDXID"],
            })
        })
        .collect();
    let digest = hex::encode(Sha256::digest(
        serde_json::to_vec(&packages).unwrap_or_default(),
    ));
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{name} system image"),
        "documentNamespace": format!("urn:bakery-image:sbom:{digest}"),
        "creationInfo": {
            "created": created,
            "creators": [concat!("Tool: bakery-image-", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}
