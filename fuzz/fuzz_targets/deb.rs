//! Any bytes given to the .deb reader (ar + data.tar.*): no panic, nothing half applied.
#![no_main]

use bakery_image::stage::{self, ContentStore, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let deb = dir.path().join("fuzz.deb");
    std::fs::write(&deb, data).unwrap();
    let mut store = ContentStore::new(dir.path().join("content")).unwrap();
    let mut tree = Tree::new();
    if stage::deb::apply_deb(&mut tree, &deb, &mut store).is_err() {
        assert_eq!(tree.len(), 1);
    }
});
