//! Any bytes given to the tar reader: no panic, and on error the tree is unchanged and
//! the content directory is left empty.
#![no_main]

use bakery_image::stage::{ContentStore, ParentLinks, Tree, tarball};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ContentStore::new(dir.path().join("content")).unwrap();
    let mut tree = Tree::new();
    for links in [ParentLinks::Refuse, ParentLinks::Follow] {
        let before = tree.len();
        let r = tarball::apply_tar_reader(
            &mut tree,
            data,
            std::path::Path::new("fuzz.tar"),
            &mut store,
            links,
        );
        if r.is_err() {
            assert_eq!(tree.len(), before);
            assert_eq!(std::fs::read_dir(store.dir()).unwrap().count(), 0);
        }
        for (p, _) in tree.iter() {
            assert!(!p.split('/').any(|c| c == ".."), "{p}");
        }
    }
});
