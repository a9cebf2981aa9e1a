//! The store's promises, tested on a real database in a temporary directory.

use bureau_store::*;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

fn open(dir: &std::path::Path) -> Store {
    Store::open(dir, StoreOptions::default()).unwrap()
}

fn user(store: &Store, name: &str) -> Principal {
    let name = name.to_string();
    store
        .write_blocking(Actor::System, vec![], move |w| {
            w.create_principal(PrincipalKind::User, &name, None)
        })
        .unwrap()
}

fn collection(store: &Store, owner: PrincipalId, name: &str) -> Collection {
    let name = name.to_string();
    store
        .write_blocking(Actor::Principal(owner), vec![], move |w| {
            w.create_collection(owner, CollectionKind::Mailbox, &name)
        })
        .unwrap()
}

fn put(store: &Store, actor: Actor, coll: CollectionId, body: &[u8]) -> Result<Item> {
    let staged = store.stage_blocking(body, Content::Data)?;
    let blob = staged.blob_ref();
    store.write_blocking(actor, vec![staged], move |w| {
        w.put_item(
            coll,
            NewItem {
                blob: Some(blob),
                ..Default::default()
            },
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_all_land_with_increasing_modseqs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (alice, colls) = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            let alice = user(&store, "alice");
            let colls: Vec<CollectionId> = (0..4)
                .map(|i| collection(&store, alice.id, &format!("c{i}")).id)
                .collect();
            (alice, colls)
        })
        .await
        .unwrap()
    };

    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let store = store.clone();
        let coll = colls[(t % 4) as usize];
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0..1000u64 {
                let body = format!("task {t} write {i}").into_bytes();
                let staged = store.stage(body, Content::Data).await.unwrap();
                let blob = staged.blob_ref();
                let item = store
                    .write(Actor::Principal(1), vec![staged], move |w| {
                        w.put_item(
                            coll,
                            NewItem {
                                blob: Some(blob),
                                ..Default::default()
                            },
                        )
                    })
                    .await
                    .unwrap();
                seen.push((coll, item.id, item.modseq));
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seen = t.await.unwrap();
        // Within one writer, modseqs of a collection only grow.
        assert!(seen.windows(2).all(|p| p[0].2 < p[1].2));
        all.extend(seen);
    }
    assert_eq!(all.len(), 64_000);
    let r = store.reader(Actor::Principal(alice.id)).unwrap();
    let mut total = 0;
    for c in &colls {
        let items = r.items(*c).unwrap();
        total += items.len();
        let coll = r.collection(*c).unwrap();
        // Every modseq given once, none skipped: 16 writers x 1000 items.
        let modseqs: HashSet<u64> = items.iter().map(|i| i.modseq).collect();
        assert_eq!(modseqs.len(), 16_000);
        // (A collection starts at modseq 1.)
        assert_eq!(coll.modseq, 16_001);
        // Ids follow modseq order: a later item never has an earlier modseq.
        assert!(items.windows(2).all(|p| p[0].modseq < p[1].modseq));
    }
    assert_eq!(total, 64_000);
}

#[test]
fn changes_since_returns_exactly_the_changed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = user(&store, "a");
    let c = collection(&store, a.id, "INBOX").id;
    let actor = Actor::Principal(a.id);
    let ids: Vec<ItemId> = (0..10)
        .map(|i| {
            put(&store, actor, c, format!("m{i}").as_bytes())
                .unwrap()
                .id
        })
        .collect();
    let mark = store.reader(actor).unwrap().collection(c).unwrap().modseq;
    assert_eq!(mark, 11);

    // After the mark: change 2, delete 3 and 5, add one, then delete the added one and add another.
    let (i2, i3, i5) = (ids[2], ids[3], ids[5]);
    store
        .write_blocking(actor, vec![], move |w| {
            w.update_item(c, i2, None, |it| it.flags.push("\\Seen".into()))
        })
        .unwrap();
    store
        .write_blocking(actor, vec![], move |w| {
            w.delete_item(c, i3)?;
            w.delete_item(c, i5)
        })
        .unwrap();
    let added = put(&store, actor, c, b"new").unwrap();
    let gone = put(&store, actor, c, b"short-lived").unwrap();
    store
        .write_blocking(actor, vec![], move |w| w.delete_item(c, gone.id))
        .unwrap();

    let r = store.reader(actor).unwrap();
    let ch = r.changes_since(c, mark).unwrap();
    let changed: Vec<ItemId> = ch.changed.iter().map(|i| i.id).collect();
    assert_eq!(changed, vec![i2, added.id]);
    let mut deleted = ch.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, vec![i3, i5, gone.id]);
    assert_eq!(ch.modseq, r.collection(c).unwrap().modseq);
    assert_eq!(ch.changed[0].flags, vec!["\\Seen".to_string()]);
    // Nothing since the head.
    let none = r.changes_since(c, ch.modseq).unwrap();
    assert!(none.changed.is_empty() && none.deleted.is_empty());
    // From zero: every live item, and the tombstones.
    let all = r.changes_since(c, 0).unwrap();
    assert_eq!(all.changed.len(), 9);
    assert_eq!(all.deleted.len(), 3);
    assert!(all.deleted_names.is_empty(), "these items had no names");

    // A named item (a DAV resource) keeps its name in its tombstone.
    let staged = store
        .stage_blocking(b"BEGIN:VCALENDAR", Content::Data)
        .unwrap();
    let blob = staged.blob_ref();
    let named = store
        .write_blocking(actor, vec![staged], move |w| {
            w.put_item(
                c,
                NewItem {
                    name: Some("event.ics".into()),
                    blob: Some(blob),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    let head = store.reader(actor).unwrap().collection(c).unwrap().modseq;
    store
        .write_blocking(actor, vec![], move |w| w.delete_item(c, named.id))
        .unwrap();
    let ch = store.reader(actor).unwrap().changes_since(c, head).unwrap();
    assert_eq!(ch.deleted, vec![named.id]);
    assert_eq!(
        ch.deleted_names.get(&named.id).map(String::as_str),
        Some("event.ics")
    );
}

#[test]
fn rights_are_enforced_by_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b, c) = (user(&store, "a"), user(&store, "b"), user(&store, "c"));
    let group = store
        .write_blocking(Actor::System, vec![], move |w| {
            let g = w.create_principal(PrincipalKind::Group, "team", None)?;
            w.set_members(g.id, &[c.id])?;
            Ok::<_, StoreError>(g)
        })
        .unwrap();
    let cal = collection(&store, a.id, "private").id;
    put(&store, Actor::Principal(a.id), cal, b"secret").unwrap();
    let (ab, ac) = (Actor::Principal(b.id), Actor::Principal(c.id));

    // No grant: b cannot read, list or write a's collection, nor learn that it exists.
    let rb = store.reader(ab).unwrap();
    assert!(matches!(rb.collection(cal), Err(StoreError::NotFound)));
    assert!(matches!(rb.items(cal), Err(StoreError::NotFound)));
    assert!(rb.collections_of(a.id).unwrap().is_empty());
    assert!(rb.shared_with_me().unwrap().is_empty());
    assert!(matches!(
        put(&store, ab, cal, b"x"),
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.write_blocking(ab, vec![], move |w| w.create_collection(
            a.id,
            CollectionKind::Calendar,
            "x"
        )),
        Err(StoreError::Forbidden)
    ));
    // b cannot grant itself rights either.
    assert!(matches!(
        store.write_blocking(ab, vec![], move |w| w.grant(
            cal,
            b.id,
            Some(Right::ReadWrite)
        )),
        Err(StoreError::NotFound)
    ));

    // A read grant: b reads, and is refused writing.
    store
        .write_blocking(Actor::Principal(a.id), vec![], move |w| {
            w.grant(cal, b.id, Some(Right::Read))
        })
        .unwrap();
    let rb = store.reader(ab).unwrap();
    assert_eq!(rb.items(cal).unwrap().len(), 1);
    let item = rb.items(cal).unwrap()[0].clone();
    assert_eq!(rb.content(&item).unwrap(), b"secret");
    assert_eq!(rb.shared_with_me().unwrap()[0].1, Access::Read);
    assert!(matches!(
        put(&store, ab, cal, b"x"),
        Err(StoreError::Forbidden)
    ));
    let id = item.id;
    assert!(matches!(
        store.write_blocking(ab, vec![], move |w| w.delete_item(cal, id)),
        Err(StoreError::Forbidden)
    ));
    assert!(matches!(
        store.write_blocking(ab, vec![], move |w| w.delete_collection(cal)),
        Err(StoreError::Forbidden)
    ));

    // A read-write grant to the group: its member c writes; b (not a member) still cannot.
    assert!(matches!(
        put(&store, ac, cal, b"x"),
        Err(StoreError::NotFound)
    ));
    store
        .write_blocking(Actor::Principal(a.id), vec![], move |w| {
            w.grant(cal, group.id, Some(Right::ReadWrite))
        })
        .unwrap();
    put(&store, ac, cal, b"from c").unwrap();
    assert!(matches!(
        put(&store, ab, cal, b"x"),
        Err(StoreError::Forbidden)
    ));
    assert_eq!(
        store.reader(ac).unwrap().shared_with_me().unwrap()[0].1,
        Access::ReadWrite
    );

    // Leaving the group takes the right away.
    store
        .write_blocking(Actor::System, vec![], move |w| w.set_members(group.id, &[]))
        .unwrap();
    assert!(matches!(
        store.reader(ac).unwrap().items(cal),
        Err(StoreError::NotFound)
    ));
    // The store is as the refused writes left it: two items.
    assert_eq!(
        store
            .reader(Actor::Principal(a.id))
            .unwrap()
            .items(cal)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_failing_write_in_a_batch_changes_nothing_and_spares_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = user(&store, "a");
    let c = collection(&store, a.id, "INBOX").id;
    let actor = Actor::Principal(a.id);
    // Fails after writing: the first item is put, then a name clash.
    let r = store.write_blocking(actor, vec![], move |w| {
        w.put_item(
            c,
            NewItem {
                name: Some("x".into()),
                ..Default::default()
            },
        )?;
        w.put_item(
            c,
            NewItem {
                name: Some("x".into()),
                ..Default::default()
            },
        )
    });
    assert!(matches!(r, Err(StoreError::Exists(_))));
    let reader = store.reader(actor).unwrap();
    assert!(reader.items(c).unwrap().is_empty());
    assert_eq!(reader.collection(c).unwrap().modseq, 1);
}

#[test]
fn quota_refuses_and_deletion_frees() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = user(&store, "a");
    store
        .write_blocking(Actor::System, vec![], move |w| w.set_quota(a.id, Some(100)))
        .unwrap();
    let c = collection(&store, a.id, "INBOX").id;
    let actor = Actor::Principal(a.id);
    let first = put(&store, actor, c, &[b'x'; 80]).unwrap();
    assert!(matches!(
        put(&store, actor, c, &[b'y'; 30]),
        Err(StoreError::OverQuota)
    ));
    store
        .write_blocking(actor, vec![], move |w| w.delete_item(c, first.id))
        .unwrap();
    put(&store, actor, c, &[b'y'; 30]).unwrap();
    assert_eq!(store.reader(actor).unwrap().usage(a.id).unwrap(), 30);
}

#[test]
fn blobs_are_shared_and_removed_with_their_last_item() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = user(&store, "a");
    let c1 = collection(&store, a.id, "one").id;
    let c2 = collection(&store, a.id, "two").id;
    let actor = Actor::Principal(a.id);
    // A large body is a file; a small one lives in the database. Both are shared.
    let large = vec![b'L'; INLINE_MAX as usize + 1];
    for body in [large.as_slice(), b"small body"] {
        let i1 = put(&store, actor, c1, body).unwrap();
        let i2 = store
            .write_blocking(actor, vec![], move |w| w.copy_item(c1, i1.id, c2))
            .unwrap();
        let hex = i1.blob.unwrap().hex();
        let path = dir.path().join("blobs").join(&hex[..2]).join(&hex);
        assert_eq!(path.exists(), body.len() > INLINE_MAX as usize);
        store
            .write_blocking(actor, vec![], move |w| w.delete_item(c1, i1.id))
            .unwrap();
        assert!(
            store.reader(actor).unwrap().content(&i2).unwrap() == body,
            "kept for the copy"
        );
        store
            .write_blocking(actor, vec![], move |w| w.delete_item(c2, i2.id))
            .unwrap();
        assert!(!path.exists(), "removed with its last item");
        // Gone for good: a new item must stage it again.
        let blob = i1.blob.unwrap();
        let r = store.write_blocking(actor, vec![], move |w| {
            w.put_item(
                c1,
                NewItem {
                    blob: Some(blob),
                    ..Default::default()
                },
            )
        });
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    }
}

#[test]
fn derived_data_lives_and_dies_with_its_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.set_deriver(|b| vec![("len", b.len().to_string().into_bytes())]);
    let a = user(&store, "a");
    let e = user(&store, "e");
    let c1 = collection(&store, a.id, "one").id;
    let c2 = collection(&store, a.id, "two").id;
    let actor = Actor::Principal(a.id);
    let staged = store
        .stage_blocking(b"a message", Content::Message)
        .unwrap();
    let blob = staged.blob_ref();
    let i1 = store
        .write_blocking(actor, vec![staged], move |w| {
            w.put_item(
                c1,
                NewItem {
                    blob: Some(blob),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    let i2 = store
        .write_blocking(actor, vec![], move |w| w.copy_item(c1, i1.id, c2))
        .unwrap();
    let r = store.reader(actor).unwrap();
    assert_eq!(
        r.derived(&i2, "len").unwrap(),
        Some(b"9".to_vec()),
        "shared"
    );
    assert_eq!(r.derived(&i2, "other").unwrap(), None);
    // Saved by a reader on a miss, only for an item it may read.
    let r = store.write_blocking(Actor::Principal(e.id), vec![], move |w| {
        w.set_derived(c1, i1.id, "other", b"x")
    });
    assert!(
        matches!(r, Err(StoreError::NotFound)),
        "hidden from e: {r:?}"
    );
    store
        .write_blocking(actor, vec![], move |w| {
            w.set_derived(c1, i1.id, "other", b"x")
        })
        .unwrap();
    let r = store.reader(actor).unwrap();
    assert_eq!(r.derived(&i2, "other").unwrap(), Some(b"x".to_vec()));
    // Gone with the blob's last item: a new message of the same bytes derives afresh.
    store
        .write_blocking(actor, vec![], move |w| {
            w.delete_item(c1, i1.id)?;
            w.delete_item(c2, i2.id)
        })
        .unwrap();
    let i3 = put(&store, actor, c1, b"a message").unwrap();
    let r = store.reader(actor).unwrap();
    assert_eq!(r.derived(&i3, "len").unwrap(), None);
    assert_eq!(r.derived(&i3, "other").unwrap(), None);
}

#[test]
fn a_mailbox_index_follows_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = user(&store, "a");
    let inbox = collection(&store, a.id, "INBOX").id;
    let actor = Actor::Principal(a.id);
    let ids: Vec<ItemId> = (0..4)
        .map(|i| {
            put(&store, actor, inbox, format!("m{i}").as_bytes())
                .unwrap()
                .id
        })
        .collect();
    let index = || {
        let r = store.reader(actor).unwrap();
        let c = r.collection(inbox).unwrap();
        (
            r.item_ids(inbox).unwrap(),
            r.unseen(inbox).unwrap(),
            c.keywords,
            r.deleted(inbox).unwrap(),
        )
    };
    assert_eq!(index(), (ids.clone(), ids.clone(), vec![], vec![]));
    let (first, second, fourth) = (ids[0], ids[1], ids[3]);
    store
        .write_blocking(actor, vec![], move |w| {
            w.update_item(inbox, first, None, |it| {
                it.flags = vec!["\\Seen".into(), "$Work".into()]
            })?;
            w.update_item(inbox, second, None, |it| {
                it.flags = vec!["urgent".into(), "\\Deleted".into()]
            })?;
            w.update_item(inbox, fourth, None, |it| {
                it.flags = vec!["\\Deleted".into()]
            })?;
            w.delete_item(inbox, fourth)
        })
        .unwrap();
    let (all, unseen, keywords, deleted) = index();
    assert_eq!(all, &ids[..3]);
    assert_eq!(unseen, &ids[1..3]);
    assert_eq!(keywords, ["$Work", "urgent"]);
    assert_eq!(deleted, [second], "flagged, and not once expunged");
    // Keywords stay defined once used (as Dovecot keeps them); \Seen taken back is unseen.
    store
        .write_blocking(actor, vec![], move |w| {
            w.update_item(inbox, first, None, |it| it.flags.clear())?;
            w.update_item(inbox, second, None, |it| it.flags.clear())
        })
        .unwrap();
    let (_, unseen, keywords, deleted) = index();
    assert_eq!(unseen, &ids[..3]);
    assert_eq!(keywords, ["$Work", "urgent"]);
    assert!(deleted.is_empty(), "\\Deleted taken back");
    // Other collections have no index; a deleted mailbox leaves none behind.
    let cal = store
        .write_blocking(actor, vec![], move |w| {
            w.create_collection(a.id, CollectionKind::Calendar, "cal")
        })
        .unwrap()
        .id;
    put(&store, actor, cal, b"BEGIN:VCALENDAR").unwrap();
    assert!(store.reader(actor).unwrap().unseen(cal).unwrap().is_empty());
    store
        .write_blocking(actor, vec![], move |w| w.delete_collection(inbox))
        .unwrap();
    let again = collection(&store, a.id, "INBOX").id;
    assert!(
        store
            .reader(actor)
            .unwrap()
            .unseen(again)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_uid_index_follows_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = user(&store, "a");
    let actor = Actor::Principal(a.id);
    let mk = |name: &str| {
        let name = name.to_string();
        store
            .write_blocking(actor, vec![], move |w| {
                w.create_collection(a.id, CollectionKind::Calendar, &name)
            })
            .unwrap()
            .id
    };
    let (cal, other) = (mk("cal"), mk("other"));
    let put_uid = |coll: CollectionId, name: &str, uid: &str| {
        let staged = store.stage_blocking(uid.as_bytes(), Content::Data).unwrap();
        let blob = staged.blob_ref();
        let (name, uid) = (name.to_string(), uid.to_string());
        store
            .write_blocking(actor, vec![staged], move |w| {
                w.put_item(
                    coll,
                    NewItem {
                        name: Some(name.clone()),
                        blob: Some(blob),
                        props: BTreeMap::from([(prop::UID.to_string(), uid.clone())]),
                        ..Default::default()
                    },
                )
            })
            .unwrap()
    };
    let names = |coll, uid: &str| -> Vec<String> {
        let r = store.reader(actor).unwrap();
        r.items_with_uid(coll, uid)
            .unwrap()
            .into_iter()
            .filter_map(|i| i.name)
            .collect()
    };
    let one = put_uid(cal, "one.ics", "u1");
    put_uid(cal, "two.ics", "u2");
    assert_eq!(names(cal, "u1"), ["one.ics"]);
    assert!(names(other, "u1").is_empty(), "per collection");
    // Changed, copied, deleted.
    store
        .write_blocking(actor, vec![], move |w| {
            w.update_item(cal, one.id, None, |it| {
                it.props.insert(prop::UID.into(), "u1b".into());
            })
        })
        .unwrap();
    assert!(names(cal, "u1").is_empty());
    assert_eq!(names(cal, "u1b"), ["one.ics"]);
    let copy = store
        .write_blocking(actor, vec![], move |w| w.copy_item(cal, one.id, other))
        .unwrap();
    assert_eq!(names(other, "u1b").len(), 1);
    store
        .write_blocking(actor, vec![], move |w| w.delete_item(other, copy.id))
        .unwrap();
    assert!(names(other, "u1b").is_empty());
    // Another user cannot look.
    let e = user(&store, "e");
    let r = store.reader(Actor::Principal(e.id)).unwrap();
    assert!(r.items_with_uid(cal, "u2").is_err());
    // Restored from a backup: the index comes along.
    let mut archive = Vec::new();
    store.backup(&mut archive).unwrap();
    let restored = tempfile::tempdir().unwrap();
    let target = restored.path().join("r");
    bureau_store::backup::restore(archive.as_slice(), &target).unwrap();
    let back = open(&target);
    let r = back.reader(actor).unwrap();
    assert_eq!(r.items_with_uid(cal, "u2").unwrap().len(), 1);
    store
        .write_blocking(actor, vec![], move |w| w.delete_collection(cal))
        .unwrap();
}

#[test]
fn change_bus_publishes_after_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = user(&store, "a");
    let c = collection(&store, a.id, "INBOX").id;
    let mut rx = store.subscribe();
    let item = put(&store, Actor::Principal(a.id), c, b"hello").unwrap();
    let change = rx.try_recv().unwrap();
    assert_eq!(
        change,
        Change {
            owner: a.id,
            collection: c,
            modseq: item.modseq
        }
    );
    // Published after commit: a reader sees it now.
    assert_eq!(
        store
            .reader(Actor::System)
            .unwrap()
            .collection(c)
            .unwrap()
            .modseq,
        item.modseq
    );
}

/// The child side of the crash test: writes until killed, printing each acknowledged write.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("BUREAU_CRASH_CHILD_DIR") else {
        return;
    };
    let store = open(std::path::Path::new(&dir));
    let a = user(&store, "a");
    let c = collection(&store, a.id, "INBOX").id;
    let store = Arc::new(store);
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (store, out) = (store.clone(), out.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    // Bodies of varied size, some large, so a kill can land mid-file.
                    let body = format!("{t}:{i}:").repeat(1 + (i % 50) * 200).into_bytes();
                    let item = put(&store, Actor::Principal(1), c, &body).unwrap();
                    let mut o = out.lock().unwrap();
                    writeln!(o, "ACK {} {}", item.id, blake3::hash(&body).to_hex()).unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn sigkill_during_a_write_burst_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("BUREAU_CRASH_CHILD_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked: BTreeMap<ItemId, String> = BTreeMap::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 3000 {
        let line = lines.next().expect("child ended early").unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (id, hash) = rest.split_once(' ').unwrap();
            acked.insert(id.parse().unwrap(), hash.to_string());
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    // Acks printed between our last read and the kill.
    for line in lines.map_while(|l| l.ok()) {
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (id, hash) = rest.split_once(' ').unwrap();
            acked.insert(id.parse().unwrap(), hash.to_string());
        }
    }

    let store = open(dir.path());
    let r = store.reader(Actor::System).unwrap();
    let inbox = r.collection_by_name(1, "INBOX").unwrap();
    let items: BTreeMap<ItemId, Item> = r
        .items(inbox.id)
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i))
        .collect();
    for (id, hash) in &acked {
        let item = items
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged item {id} lost"));
        assert_eq!(&item.blob.unwrap().hex(), hash);
    }
    // No partial item: every item present has its whole body.
    for item in items.values() {
        let body = r.content(item).unwrap();
        assert_eq!(
            blake3::hash(&body).to_hex().to_string(),
            item.blob.unwrap().hex()
        );
        assert_eq!(body.len() as u64, item.blob.unwrap().size);
    }
    assert!(items.len() >= acked.len());
    // The store still takes writes.
    put(&store, Actor::System, inbox.id, b"after the crash").unwrap();
}

/// A full disk: the write is refused with a clear error, nothing acknowledged is lost, and
/// the store takes writes again once there is room. Needs root, to mount a small tmpfs.
#[test]
fn full_disk_refuses_the_write_and_loses_nothing() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("full_disk test needs root (to mount a small tmpfs); not run");
        return;
    }
    let mnt = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.path().to_path_buf());

    let dir = mnt.path().join("data");
    let opts = StoreOptions {
        min_free_bytes: 256 << 10,
        ..Default::default()
    };
    let store = Store::open(&dir, opts.clone()).unwrap();
    let a = user(&store, "a");
    let c = collection(&store, a.id, "INBOX").id;
    let actor = Actor::Principal(a.id);
    let mut acked = Vec::new();
    let err = loop {
        let body = format!("{}", acked.len()).repeat(20_000).into_bytes();
        match put(&store, actor, c, &body) {
            Ok(item) => acked.push((item.id, body)),
            Err(e) => break e,
        }
        assert!(acked.len() < 1000, "a 4 MB disk never filled");
    };
    assert!(matches!(err, StoreError::DiskFull(_)), "got {err}");
    assert!(err.to_string().starts_with("disk full"));
    assert!(!acked.is_empty());
    // Every acknowledged write is there, in this process and after a restart.
    {
        let r = store.reader(actor).unwrap();
        for (id, body) in &acked {
            let item = r.item(c, *id).unwrap();
            assert_eq!(&r.content(&item).unwrap(), body);
        }
    }
    // The disk filled to the last byte: a write that only touches metadata is refused too.
    let filler = mnt.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 4 << 20]);
    let mut refused = false;
    for n in 0..200 {
        let id = acked[1].0;
        let r = store.write_blocking(actor, vec![], move |w| {
            w.update_item(c, id, None, |it| it.flags.push(format!("$k{n}")))
        });
        if let Err(e) = r {
            assert!(
                matches!(e, StoreError::DiskFull(_) | StoreError::Io(_)),
                "got {e}"
            );
            refused = true;
            break;
        }
    }
    assert!(refused, "a disk full to the last byte takes no write");
    std::fs::remove_file(&filler).unwrap();
    // Room freed by deleting half the items: the store takes new content again, without a
    // restart.
    let half = acked.len() / 2;
    let gone: Vec<ItemId> = acked[..half].iter().map(|(id, _)| *id).collect();
    store
        .write_blocking(actor, vec![], move |w| {
            gone.iter().try_for_each(|id| w.delete_item(c, *id))
        })
        .unwrap();
    put(&store, actor, c, b"fits again").unwrap();
    drop(store);
    let store = Store::open(&dir, opts).unwrap();
    let r = store.reader(actor).unwrap();
    for (n, (id, body)) in acked.iter().enumerate() {
        match r.item(c, *id) {
            Ok(item) if n >= half => assert!(&r.content(&item).unwrap() == body),
            Err(StoreError::NotFound) if n < half => {}
            other => panic!("item {id}: {other:?}"),
        }
    }
}

#[test]
fn device_sync_state_round_trips_and_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b) = (user(&store, "a"), user(&store, "b"));
    let c = collection(&store, a.id, "INBOX").id;
    let actor = Actor::Principal(a.id);
    let mut state = SyncState {
        acked_modseq: 7,
        sync_key: 3,
        last_key: 2,
        ..Default::default()
    };
    state.last_response = b"<Sync/>".to_vec();
    state.id_map.insert("client-1".into(), 42);
    let device = Device {
        id: "PHONE1".into(),
        protocol: "eas/16.1".into(),
        ..Default::default()
    };
    let (s2, d2) = (state.clone(), device.clone());
    store
        .write_blocking(actor, vec![], move |w| {
            w.put_device(a.id, &d2)?;
            w.put_sync_state(a.id, "PHONE1", c, &s2)
        })
        .unwrap();
    let r = store.reader(actor).unwrap();
    assert_eq!(r.sync_state(a.id, "PHONE1", c).unwrap(), Some(state));
    assert_eq!(r.devices(a.id).unwrap(), vec![device]);
    // Another user can neither read nor write a's devices.
    let rb = store.reader(Actor::Principal(b.id)).unwrap();
    assert!(matches!(rb.devices(a.id), Err(StoreError::Forbidden)));
    assert!(matches!(
        store.write_blocking(Actor::Principal(b.id), vec![], move |w| w
            .delete_device(a.id, "PHONE1")),
        Err(StoreError::Forbidden)
    ));
    // Removing the device removes its sync state.
    store
        .write_blocking(actor, vec![], move |w| w.delete_device(a.id, "PHONE1"))
        .unwrap();
    let r = store.reader(actor).unwrap();
    assert!(r.devices(a.id).unwrap().is_empty());
    assert_eq!(r.sync_state(a.id, "PHONE1", c).unwrap(), None);
}

#[test]
fn private_seen_needs_only_read_and_stays_private() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (alice, bob) = (user(&store, "alice"), user(&store, "bob"));
    let c = collection(&store, alice.id, "Shared");
    // A new collection's modseq is positive before its first item.
    assert_eq!(c.modseq, 1);
    let item = put(&store, Actor::System, c.id, b"Subject: x\r\n\r\nx").unwrap();
    let bob_a = Actor::Principal(bob.id);
    // No grant: bob cannot even see it.
    let r = store.write_blocking(bob_a, vec![], move |w| {
        w.set_private_seen(c.id, item.id, true)
    });
    assert!(matches!(r, Err(StoreError::NotFound)));
    store
        .write_blocking(Actor::Principal(alice.id), vec![], move |w| {
            w.grant(c.id, bob.id, Some(Right::Read))
        })
        .unwrap();
    let seen = store
        .write_blocking(bob_a, vec![], move |w| {
            w.set_private_seen(c.id, item.id, true)
        })
        .unwrap();
    assert!(seen.seen_by(bob.id) && !seen.seen_by(alice.id));
    assert!(seen.flags.is_empty(), "the owner's flags are untouched");
    assert!(seen.modseq > item.modseq);
    // Read access still may not change shared flags.
    let r = store.write_blocking(bob_a, vec![], move |w| {
        w.update_item(c.id, item.id, None, |i| i.flags.push("\\Flagged".into()))
    });
    assert!(matches!(r, Err(StoreError::Forbidden)));
    // A copy into bob's own mailbox does not carry bob's (or anyone's) private state.
    let mine = collection(&store, bob.id, "Mine");
    let copy = store
        .write_blocking(bob_a, vec![], move |w| w.copy_item(c.id, item.id, mine.id))
        .unwrap();
    assert!(!copy.seen_by(bob.id));
}

#[test]
fn a_backup_restores_into_an_empty_directory_with_every_item_and_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("live"));
    let alice = user(&store, "alice");
    let inbox = collection(&store, alice.id, "INBOX");
    let small = put(&store, Actor::System, inbox.id, b"a small message").unwrap();
    let big_body = vec![b'x'; 100_000];
    let big = put(&store, Actor::System, inbox.id, &big_body).unwrap();
    let gone = put(&store, Actor::System, inbox.id, &vec![b'y'; 80_000]).unwrap();
    // Taken while a deletion frees a blob file: the file stays until the backup is done.
    let modseq = store
        .reader(Actor::System)
        .unwrap()
        .collection(inbox.id)
        .unwrap()
        .modseq;
    assert!(modseq >= 3);
    let mut archive = Vec::new();
    let info = store.backup(&mut archive).unwrap();
    assert_eq!((info.blobs, info.schema_version), (2, SCHEMA_VERSION));
    store
        .write_blocking(Actor::System, vec![], move |w| {
            w.delete_item(inbox.id, gone.id)
        })
        .unwrap();

    let target = dir.path().join("restored");
    let restored = bureau_store::backup::restore(archive.as_slice(), &target).unwrap();
    assert_eq!(restored.blobs, 2);
    // Not over an existing store.
    assert!(bureau_store::backup::restore(archive.as_slice(), &target).is_err());
    let back = open(&target);
    let r = back.reader(Actor::System).unwrap();
    let p = r.principal_by_name("alice").unwrap();
    let coll = r.collection_by_name(p.id, "INBOX").unwrap();
    let items = r.items(coll.id).unwrap();
    assert_eq!(items.len(), 3, "the snapshot had three items");
    assert_eq!(
        r.content(&r.item(coll.id, small.id).unwrap()).unwrap(),
        b"a small message"
    );
    assert_eq!(
        r.content(&r.item(coll.id, big.id).unwrap()).unwrap(),
        big_body
    );
    assert_eq!(r.collection(coll.id).unwrap().modseq, modseq);

    // A damaged blob is refused and nothing is left behind.
    let mut bad = Vec::new();
    {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
        let gz = flate2::write::GzEncoder::new(&mut bad, flate2::Compression::fast());
        let mut out = tar::Builder::new(gz);
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            let mut h = e.header().clone();
            if e.path().unwrap().starts_with("blobs") {
                data[10] ^= 1;
            }
            out.append_data(&mut h, e.path().unwrap(), data.as_slice())
                .unwrap();
        }
        out.into_inner().unwrap().finish().unwrap();
    }
    let other = dir.path().join("other");
    let err = bureau_store::backup::restore(bad.as_slice(), &other).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(!other.join("bureau.redb").exists());
}

/// Issue 17, defect 5: a folder named U+0000 (IMAP `CREATE "&AAA-"`) broke every
/// FolderSync. No protocol can store a control character in a name: the store refuses it.
#[test]
fn names_with_control_characters_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let u = user(&store, "ctl");
    let ok = collection(&store, u.id, "Projects");
    for bad in ["\0", "a\u{1b}b", "tab\there", "line\nbreak", "\u{7f}"] {
        let name = bad.to_string();
        let r = store.write_blocking(Actor::Principal(u.id), vec![], move |w| {
            w.create_collection(u.id, CollectionKind::Mailbox, &name)
        });
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{bad:?}: {r:?}");
        let name = bad.to_string();
        let r = store.write_blocking(Actor::Principal(u.id), vec![], move |w| {
            w.rename_collection(ok.id, &name)
        });
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{bad:?}: {r:?}");
    }
}

#[test]
fn id_runs_follow_puts_deletes_copies_and_deleted_collections() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = user(&store, "a");
    let inbox = collection(&store, a.id, "INBOX").id;
    let other = collection(&store, a.id, "Other").id;
    let actor = Actor::Principal(a.id);
    let check = |coll: CollectionId| {
        let r = store.reader(actor).unwrap();
        let expanded: Vec<ItemId> = r
            .id_runs(coll)
            .unwrap()
            .into_iter()
            .flat_map(|(first, n)| first..first + n)
            .collect();
        assert_eq!(expanded, r.item_ids(coll).unwrap(), "runs of {coll}");
        r.id_runs(coll).unwrap()
    };
    let ids: Vec<ItemId> = (0..10)
        .map(|i| {
            put(&store, actor, inbox, format!("m{i}").as_bytes())
                .unwrap()
                .id
        })
        .collect();
    assert_eq!(check(inbox), [(ids[0], 10)]);
    // The first, one in the middle and the last go; a copy lands in another mailbox.
    let doomed = [ids[0], ids[4], ids[9]];
    let keep = ids[5];
    store
        .write_blocking(actor, vec![], move |w| {
            for id in doomed {
                w.delete_item(inbox, id)?;
            }
            w.copy_item(inbox, keep, other).map(drop)
        })
        .unwrap();
    assert_eq!(check(inbox), [(ids[1], 3), (ids[5], 4)]);
    assert_eq!(check(other).len(), 1);
    // New ids go after the gap left by the last one.
    let next = put(&store, actor, inbox, b"again").unwrap().id;
    assert_eq!(check(inbox), [(ids[1], 3), (ids[5], 4), (next, 1)]);
    store
        .write_blocking(actor, vec![], move |w| w.delete_collection(inbox))
        .unwrap();
    let again = collection(&store, a.id, "INBOX").id;
    assert!(check(again).is_empty());
}

/// Issue 24: a mailbox's term index answers a needle with a superset of the messages that
/// hold it, after put, copy, delete, a blob's change, a restore and a collection's delete;
/// messages stored without terms are candidates until `index_pending` gives them theirs.
#[test]
fn the_term_index_follows_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = user(&store, "a");
    let actor = Actor::Principal(a.id);
    let inbox = collection(&store, a.id, "INBOX").id;
    let other = collection(&store, a.id, "Other").id;
    let msg = |store: &Store, coll, body: &[u8]| {
        let staged = store.stage_blocking(body, Content::Message).unwrap();
        let blob = staged.blob_ref();
        store
            .write_blocking(actor, vec![staged], move |w| {
                w.put_item(
                    coll,
                    NewItem {
                        blob: Some(blob),
                        ..Default::default()
                    },
                )
            })
            .unwrap()
    };
    // Without posting first: what a search finds before the next batch.
    let now = |store: &Store, coll, needle: &str| {
        store
            .reader(actor)
            .unwrap()
            .term_candidates(coll, &terms::Narrow::Term(1, needle.as_bytes().to_vec()))
            .unwrap()
    };
    // After the pending work is posted.
    let find = |store: &Store, coll, needle: &str| {
        store.index_pending().unwrap();
        now(store, coll, needle)
    };
    // Stored before any deriver: unindexed, a candidate for every needle.
    let early = msg(&store, inbox, b"Quarterly report");
    assert_eq!(find(&store, inbox, "zebra"), Some(vec![early.id]));
    assert!(
        store.reader(Actor::System).unwrap().unindexed().unwrap() == [(inbox, early.id)],
        "waiting for a deriver"
    );
    store.set_deriver(|b| {
        let mut t = terms::Terms::default();
        t.add(1, b);
        vec![(terms::TERMS_FIELD, t.encode())]
    });
    assert_eq!(store.index_pending().unwrap(), 1);
    assert_eq!(now(&store, inbox, "zebra"), Some(vec![]));
    assert_eq!(find(&store, inbox, "REPORT"), Some(vec![early.id]));
    assert_eq!(find(&store, inbox, "re"), None, "too short to narrow");

    let lunch = msg(&store, inbox, b"Lunch on Friday");
    let zebra = msg(&store, inbox, b"A zebra crossing");
    // Not posted yet: a candidate for every search until the batch.
    assert_eq!(
        now(&store, inbox, "quarterly"),
        Some(vec![early.id, lunch.id, zebra.id])
    );
    assert_eq!(find(&store, inbox, "zebra"), Some(vec![zebra.id]));
    assert_eq!(find(&store, inbox, "friday"), Some(vec![lunch.id]));
    // A copy is indexed in its own mailbox only.
    let copy = store
        .write_blocking(actor, vec![], move |w| w.copy_item(inbox, zebra.id, other))
        .unwrap();
    assert_eq!(find(&store, other, "zebra"), Some(vec![copy.id]));
    store
        .write_blocking(actor, vec![], move |w| w.delete_item(inbox, zebra.id))
        .unwrap();
    assert_eq!(
        now(&store, inbox, "zebra"),
        Some(vec![zebra.id]),
        "until the batch"
    );
    assert_eq!(find(&store, inbox, "zebra"), Some(vec![]));
    assert_eq!(find(&store, other, "zebra"), Some(vec![copy.id]));
    // A new blob replaces the old terms.
    let staged = store
        .stage_blocking(b"Dinner on Saturday", Content::Message)
        .unwrap();
    let blob = staged.blob_ref();
    store
        .write_blocking(actor, vec![staged], move |w| {
            w.update_item(inbox, lunch.id, None, |i| i.blob = Some(blob))
        })
        .unwrap();
    assert_eq!(find(&store, inbox, "friday"), Some(vec![]));
    assert_eq!(find(&store, inbox, "saturday"), Some(vec![lunch.id]));
    // Many messages: postings grow past a list into a bitmap, and past one block.
    let many: Vec<u64> = (0..1100)
        .map(|i| msg(&store, inbox, format!("bulk {i}").as_bytes()).id)
        .collect();
    assert_eq!(find(&store, inbox, "bulk").unwrap(), many);
    assert_eq!(find(&store, inbox, "bulk 1099").unwrap(), [many[1099]]);
    // Someone without access learns nothing.
    let e = user(&store, "e");
    let r = store.reader(Actor::Principal(e.id)).unwrap();
    let bulk = terms::Narrow::Term(1, b"bulk".to_vec());
    assert!(r.term_candidates(inbox, &bulk).is_err());

    // A restore carries the index.
    let mut backup = Vec::new();
    store.backup(&mut backup).unwrap();
    let restored_dir = tempfile::tempdir().unwrap();
    bureau_store::backup::restore(backup.as_slice(), restored_dir.path()).unwrap();
    drop(store);
    let restored = open(restored_dir.path());
    assert_eq!(find(&restored, inbox, "saturday"), Some(vec![lunch.id]));
    assert_eq!(find(&restored, inbox, "bulk 1099").unwrap(), [many[1099]]);
    let r = restored.reader(Actor::System).unwrap();
    assert!(r.unindexed().unwrap().is_empty());
}
