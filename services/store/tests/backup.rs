//! The box's settings in a backup (issue 22).

use bureau_store::{Store, StoreOptions};

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

/// Issue 22, defect 7: the console's certificate and key, the box's name and its time zone
/// live beside the store, and a backup left them out; a restore gave a box with another
/// name, another zone and the self-signed certificate.
#[test]
fn a_backup_holds_the_boxs_settings_and_a_restore_puts_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let store = open(&live);
    for (rel, text) in [
        ("tls/custom.crt", "CERT"),
        ("tls/custom.key", "KEY"),
        ("system/hostname", "mail.office.example\n"),
        ("system/timezone", "Europe/Paris\n"),
    ] {
        std::fs::create_dir_all(live.join(rel).parent().unwrap()).unwrap();
        std::fs::write(live.join(rel), text).unwrap();
    }
    // Not a setting: left out.
    std::fs::write(live.join("tls/self-signed.key"), "SELF").unwrap();
    let mut archive = Vec::new();
    store.backup(&mut archive).unwrap();

    let target = dir.path().join("restored");
    bureau_store::backup::restore(archive.as_slice(), &target).unwrap();
    let read = |rel: &str| std::fs::read_to_string(target.join(rel)).unwrap();
    assert_eq!(read("tls/custom.crt"), "CERT");
    assert_eq!(read("tls/custom.key"), "KEY");
    assert_eq!(read("system/hostname"), "mail.office.example\n");
    assert_eq!(read("system/timezone"), "Europe/Paris\n");
    assert_eq!(
        std::fs::read_link(target.join("system/localtime")).unwrap(),
        std::path::Path::new("/usr/share/zoneinfo/Europe/Paris")
    );
    assert!(!target.join("tls/self-signed.key").exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(target.join("tls/custom.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Restored over a running box's store (the console's restore): the box's own settings
    // are kept aside with its store, and the backup's take their place.
    let other = dir.path().join("other");
    std::fs::create_dir_all(other.join("tls")).unwrap();
    std::fs::write(other.join("tls/custom.crt"), "OTHER").unwrap();
    let pending = dir.path().join("pending");
    bureau_store::backup::stage(archive.as_slice(), &pending).unwrap();
    let aside = dir.path().join("aside");
    bureau_store::backup::swap_in(&pending, &other, &aside).unwrap();
    assert_eq!(
        std::fs::read_to_string(other.join("tls/custom.crt")).unwrap(),
        "CERT"
    );
    assert_eq!(
        std::fs::read_to_string(aside.join("tls/custom.crt")).unwrap(),
        "OTHER"
    );
}
