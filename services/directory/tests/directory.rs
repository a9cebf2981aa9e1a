use bureau_directory::*;
use bureau_store::{Actor, Store, StoreOptions};

fn dir() -> (tempfile::TempDir, Directory) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    // Light argon2 parameters: these tests check behaviour, not cost.
    let opts = DirectoryOptions {
        argon2_m_kib: 256,
        argon2_t: 1,
        ..Default::default()
    };
    (tmp, Directory::new(store, opts).unwrap())
}

fn new_user(address: &str, password: &str) -> NewUser {
    NewUser {
        address: address.into(),
        password: password.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn users_domains_aliases_and_passwords() {
    let (_t, d) = dir();
    // No domain yet: refused, naming the field.
    let e = d
        .add_user(new_user("alice@example.com", "correct horse"))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("address"));
    d.add_domain("Example.com").await.unwrap();
    assert!(matches!(
        d.add_domain("example.com").await,
        Err(DirectoryError::Exists { .. })
    ));

    let mut nu = new_user("Alice@example.com", "correct horse");
    nu.display_name = Some("Alice Martin".into());
    nu.aliases = vec!["a.martin@example.com".into()];
    nu.quota = Some(1 << 30);
    let alice = d.add_user(nu).await.unwrap();
    assert_eq!(
        (alice.uid.as_str(), alice.address.as_str()),
        ("alice", "alice@example.com")
    );

    // The default collections exist, with their special use.
    let r = d.store().reader(Actor::Principal(alice.principal)).unwrap();
    let names: Vec<String> = r
        .collections_of(alice.principal)
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    for n in [
        "INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive", "calendar", "contacts",
    ] {
        assert!(names.contains(&n.to_string()), "{n} missing");
    }
    let sent = r.collection_by_name(alice.principal, "Sent").unwrap();
    assert_eq!(
        sent.props.get("special-use").map(String::as_str),
        Some("\\Sent")
    );

    // Duplicates and bad input change nothing.
    let before = d.users().unwrap();
    for (nu, field) in [
        (new_user("alice@example.com", "another pass"), "uid"),
        (
            NewUser {
                uid: Some("alice2".into()),
                ..new_user("a.martin@example.com", "another pass")
            },
            "address",
        ),
        (new_user("bob@example.com", "short"), "password"),
        (new_user("bob@example.com", "bob-is-great"), "password"),
        (new_user("bob@nowhere.example", "long enough"), "address"),
        (new_user("bad address", "long enough"), "address"),
    ] {
        let e = d.add_user(nu).await.unwrap_err();
        assert_eq!(e.field(), Some(field), "{e}");
    }
    assert_eq!(d.users().unwrap(), before);

    // Login by uid, address or alias; wrong password; disabled.
    for login in ["alice", "ALICE@example.com", "a.martin@example.com"] {
        assert!(
            matches!(d.verify(login, "correct horse").unwrap(), Verified::Ok(_)),
            "{login}"
        );
    }
    assert_eq!(
        d.verify("alice", "wrong").unwrap(),
        Verified::BadCredentials
    );
    assert_eq!(
        d.verify("nobody", "correct horse").unwrap(),
        Verified::BadCredentials
    );
    d.set_password("alice", "battery staple").await.unwrap();
    assert_eq!(
        d.verify("alice", "correct horse").unwrap(),
        Verified::BadCredentials
    );
    assert!(matches!(
        d.verify("alice", "battery staple").unwrap(),
        Verified::Ok(_)
    ));
    assert_eq!(
        d.nt_hash_of("alice").unwrap(),
        Some(nt_hash("battery staple"))
    );
    d.update_user(
        "alice",
        UserChanges {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        d.verify("alice", "battery staple").unwrap(),
        Verified::Disabled
    );

    // A domain in use cannot go.
    assert!(matches!(
        d.delete_domain("example.com").await,
        Err(DirectoryError::InUse(_))
    ));
}

#[tokio::test]
async fn groups_fan_out_and_follow_deletions() {
    let (_t, d) = dir();
    d.add_domain("example.com").await.unwrap();
    let a = d
        .add_user(new_user("ann@example.com", "long enough"))
        .await
        .unwrap();
    d.add_user(new_user("ben@example.com", "long enough"))
        .await
        .unwrap();
    let g = d
        .add_group(NewGroup {
            name: "sales".into(),
            address: Some("sales@example.com".into()),
            members: vec!["ann".into(), "ben".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(g.members, vec!["ann", "ben"]);
    match d.resolve("sales@example.com").unwrap() {
        Some(Target::Group(g)) => assert_eq!(g.members.len(), 2),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        d.resolve("ann@example.com").unwrap(),
        Some(Target::User(_))
    ));
    assert!(d.resolve("nobody@example.com").unwrap().is_none());
    // Group and user names share one space.
    assert!(matches!(
        d.add_group(NewGroup {
            name: "ann".into(),
            ..Default::default()
        })
        .await,
        Err(DirectoryError::Exists { .. })
    ));
    assert!(
        d.set_group_members("sales", vec!["ann".into(), "ghost".into()])
            .await
            .is_err()
    );
    assert_eq!(
        d.group("sales").unwrap().unwrap().members,
        vec!["ann", "ben"]
    );

    d.delete_user("ben").await.unwrap();
    assert_eq!(d.group("sales").unwrap().unwrap().members, vec!["ann"]);
    assert!(d.resolve("ben@example.com").unwrap().is_none());
    assert_eq!(
        d.store()
            .reader(Actor::System)
            .unwrap()
            .groups_of(a.principal)
            .unwrap(),
        vec![g.principal]
    );
    d.delete_group("sales").await.unwrap();
    assert!(d.resolve("sales@example.com").unwrap().is_none());
    assert!(
        d.store()
            .reader(Actor::System)
            .unwrap()
            .groups_of(a.principal)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn resources_are_calendar_users_nobody_signs_in_as() {
    let (_t, d) = dir();
    d.add_domain("example.com").await.unwrap();
    d.add_user(new_user("alice@example.com", "correct horse"))
        .await
        .unwrap();
    d.add_user(new_user("bob@example.com", "correct horse"))
        .await
        .unwrap();
    d.add_group(NewGroup {
        name: "sales".into(),
        members: vec!["bob".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let room = |policy, manager: Option<&str>, bookers: Vec<String>| NewResource {
        address: "room@example.com".into(),
        uid: None,
        display_name: Some("Blue room".into()),
        settings: Resource {
            kind: ResourceKind::Room,
            capacity: Some(8),
            location: Some("2nd floor".into()),
            policy,
            manager: manager.map(String::from),
            bookers,
            external: false,
        },
    };
    // A manager policy needs a manager who is a user; bookers must exist.
    let e = d
        .add_resource(room(BookingPolicy::Manager, None, vec![]))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("manager"));
    let e = d
        .add_resource(room(BookingPolicy::Manager, Some("nobody"), vec![]))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("manager"));
    let e = d
        .add_resource(room(BookingPolicy::AutoAccept, None, vec!["ghosts".into()]))
        .await
        .unwrap_err();
    assert_eq!(e.field(), Some("bookers"));
    let r = d
        .add_resource(room(
            BookingPolicy::Manager,
            Some("alice"),
            vec!["sales".into()],
        ))
        .await
        .unwrap();
    // Reached by its address and uid, listed apart from the people.
    assert!(
        matches!(d.resolve("room@example.com").unwrap(), Some(Target::User(u)) if u.uid == "room")
    );
    assert!(d.users().unwrap().iter().all(|u| u.uid != "room"));
    assert_eq!(d.resources().unwrap().len(), 1);
    assert_eq!(d.calendar_users().unwrap().len(), 3);
    // Nobody signs in as it, and it cannot be given a password or joined to a group.
    // No password works, the one the source once hashed for unknown logins included (a
    // login without a password of its own was checked against that hash, and so signed in
    // with it: room@example.com / "bureau dummy password").
    for login in ["room", "room@example.com"] {
        for password in ["correct horse", "bureau dummy password", ""] {
            assert_eq!(
                d.verify(login, password).unwrap(),
                Verified::BadCredentials,
                "{login} / {password:?}"
            );
        }
    }
    assert!(
        d.set_password("room", "correct horse battery")
            .await
            .is_err()
    );
    assert!(
        d.set_group_members("sales", vec!["bob".into(), "room".into()])
            .await
            .is_err()
    );
    // Bookers: the group's members only.
    let alice = d.user("alice").unwrap().unwrap();
    let bob = d.user("bob").unwrap().unwrap();
    assert!(!d.may_book(&r, &alice).unwrap());
    assert!(d.may_book(&r, &bob).unwrap());
    // Its address is free again once it is gone.
    d.delete_resource("room").await.unwrap();
    assert!(d.resolve("room@example.com").unwrap().is_none());
    assert!(d.delete_user("alice").await.is_ok());
}

/// Issue 22: the only administrator could take away their own power (demoted, disabled or
/// deleted) and leave the box with none.
#[tokio::test]
async fn the_last_administrator_stays() {
    let (_t, d) = dir();
    d.add_domain("example.com").await.unwrap();
    let mut admin = new_user("ann@example.com", "correct horse");
    admin.admin = true;
    d.add_user(admin).await.unwrap();
    d.add_user(new_user("bob@example.com", "correct horse"))
        .await
        .unwrap();
    let last = |e: Option<DirectoryError>, uid: &str| matches!(e, Some(DirectoryError::LastAdmin(u)) if u == uid);
    let change = |admin: Option<bool>, enabled: Option<bool>| UserChanges {
        admin,
        enabled,
        ..Default::default()
    };
    let demote = change(Some(false), None);
    assert!(last(
        d.update_user("ann", demote.clone()).await.err(),
        "ann"
    ));
    assert!(last(
        d.update_user("ann", change(None, Some(false))).await.err(),
        "ann"
    ));
    assert!(last(d.delete_user("ann").await.err(), "ann"));
    // Nothing changed.
    let ann = d.user("ann").unwrap().unwrap();
    assert!(ann.admin && ann.enabled);
    // Other users change as before.
    d.update_user("bob", change(None, Some(false)))
        .await
        .unwrap();
    // A disabled administrator holds no power: it does not count.
    d.update_user("bob", change(Some(true), None))
        .await
        .unwrap();
    assert!(last(
        d.update_user("ann", demote.clone()).await.err(),
        "ann"
    ));
    // With a second enabled administrator, the first may go, and then the second stays.
    d.update_user("bob", change(None, Some(true)))
        .await
        .unwrap();
    d.update_user("ann", demote).await.unwrap();
    assert!(last(d.delete_user("bob").await.err(), "bob"));
    d.delete_user("ann").await.unwrap();
}

/// SyncML's MD5 sign-in: the credential kept for each login form, the device's response
/// to a nonce checked against it.
#[tokio::test]
async fn syncml_md5_credentials_follow_the_password() {
    let (_t, d) = dir();
    d.add_domain("example.com").await.unwrap();
    d.add_user(new_user("alice@example.com", "correct horse"))
        .await
        .unwrap();
    let respond =
        |login: &str, pw: &str, nonce: &[u8]| syncml_md5_response(&syncml_md5(login, pw), nonce);
    let ok = |v: Verified| matches!(v, Verified::Ok(u) if u.uid == "alice");
    for login in ["alice", "alice@example.com"] {
        let r = respond(login, "correct horse", b"n1");
        assert!(
            ok(d.verify_syncml_md5(login, &r, b"n1").unwrap()),
            "{login}"
        );
        // Another nonce, another password, another login's digest: refused.
        assert!(!ok(d.verify_syncml_md5(login, &r, b"n2").unwrap()));
        let wrong = respond(login, "wrong horse", b"n1");
        assert!(!ok(d.verify_syncml_md5(login, &wrong, b"n1").unwrap()));
    }
    let bob = respond("bob", "correct horse", b"n1");
    assert!(!ok(d.verify_syncml_md5("bob", &bob, b"n1").unwrap()));
    // A new password: the old digest no longer signs in.
    d.set_password("alice", "battery staple").await.unwrap();
    let old = respond("alice", "correct horse", b"n1");
    assert!(!ok(d.verify_syncml_md5("alice", &old, b"n1").unwrap()));
    let new = respond("alice", "battery staple", b"n1");
    assert!(ok(d.verify_syncml_md5("alice", &new, b"n1").unwrap()));
}
