//! Scheduling through the groupware crate alone, on a real store and directory: what any
//! protocol gets by writing a calendar object through the `Scheduler`.

use bureau_directory::{Directory, DirectoryOptions, NewUser, User};
use bureau_groupware::schedule::{INBOX, Scheduler};
use bureau_store::{Actor, Collection, Store, StoreError, StoreOptions};

struct Office {
    _tmp: tempfile::TempDir,
    store: Store,
    sched: Scheduler,
    alice: User,
    bob: User,
}

async fn office() -> Office {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), StoreOptions::default()).unwrap();
    let dir = Directory::new(
        store.clone(),
        DirectoryOptions {
            argon2_m_kib: 256,
            argon2_t: 1,
            ..Default::default()
        },
    )
    .unwrap();
    dir.add_domain("example.com").await.unwrap();
    let add = |address: &str| NewUser {
        address: address.into(),
        password: "correct horse".into(),
        ..Default::default()
    };
    let alice = dir.add_user(add("alice@example.com")).await.unwrap();
    let bob = dir.add_user(add("bob@example.com")).await.unwrap();
    let sched = Scheduler::new(store.clone(), dir, None, Default::default());
    Office {
        _tmp: tmp,
        store,
        sched,
        alice,
        bob,
    }
}

impl Office {
    fn collection(&self, u: &User, name: &str) -> Result<Collection, StoreError> {
        self.store
            .reader(Actor::System)?
            .collection_by_name(u.principal, name)
    }

    /// The texts of a user's objects in a collection (none when it does not exist).
    fn texts(&self, u: &User, name: &str) -> Vec<String> {
        let Ok(c) = self.collection(u, name) else {
            return Vec::new();
        };
        let r = self.store.reader(Actor::System).unwrap();
        r.items(c.id)
            .unwrap()
            .iter()
            .map(|i| String::from_utf8(r.content(i).unwrap()).unwrap())
            .collect()
    }
}

fn meeting(partstat_bob: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:m1\r\n\
         DTSTAMP:20261201T000000Z\r\nDTSTART:20261210T100000Z\r\nDTEND:20261210T110000Z\r\n\
         SUMMARY:{summary}\r\nORGANIZER:mailto:alice@example.com\r\n\
         ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.com\r\n\
         ATTENDEE;PARTSTAT={partstat_bob}:mailto:bob@example.com\r\n\
         END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

const DEC_10_0900: i64 = 1_796_893_200; // 2026-12-10T09:00:00Z
const HOUR: i64 = 3600;

#[tokio::test]
async fn an_invitation_its_reply_and_its_cancellation_reach_users_here() {
    let o = office().await;
    let cal = o.collection(&o.alice, "calendar").unwrap();
    let made = o
        .sched
        .put_object(
            &o.alice,
            &cal,
            "m1.ics",
            None,
            meeting("NEEDS-ACTION", "Plan"),
        )
        .await
        .unwrap();
    assert!(made.props.contains_key(bureau_store::prop::SCHEDULE_TAG));

    // Bob has the event in his calendar and the REQUEST in his schedule inbox.
    let copies = o.texts(&o.bob, "calendar");
    assert_eq!(copies.len(), 1);
    assert!(copies[0].contains("UID:m1") && !copies[0].contains("METHOD:"));
    let inbox = o.texts(&o.bob, INBOX);
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].contains("METHOD:REQUEST"), "{}", inbox[0]);
    // And he is busy then.
    let (busy, tentative) = o
        .sched
        .free_busy(o.bob.principal, DEC_10_0900, DEC_10_0900 + 4 * HOUR)
        .unwrap();
    assert_eq!(busy, vec![(DEC_10_0900 + HOUR, DEC_10_0900 + 2 * HOUR)]);
    assert!(tentative.is_empty());

    // Bob accepts in his copy: Alice's copy takes his answer, her inbox the REPLY.
    let bob_cal = o.collection(&o.bob, "calendar").unwrap();
    let r = o.store.reader(Actor::System).unwrap();
    let copy = r.items_with_uid(bob_cal.id, "m1").unwrap().remove(0);
    drop(r);
    o.sched
        .put_object(
            &o.bob,
            &bob_cal,
            copy.name.as_deref().unwrap(),
            Some(copy.modseq),
            meeting("ACCEPTED", "Plan"),
        )
        .await
        .unwrap();
    let mine = o.texts(&o.alice, "calendar");
    assert!(
        mine[0].contains("PARTSTAT=ACCEPTED:mailto:bob@example.com"),
        "{}",
        mine[0]
    );
    assert!(o.texts(&o.alice, INBOX)[0].contains("METHOD:REPLY"));

    // Alice deletes the event: Bob's copy goes, and he is told.
    o.sched
        .delete_object(&o.alice, &cal, made.id)
        .await
        .unwrap();
    assert!(o.texts(&o.bob, "calendar").is_empty());
    assert!(
        o.texts(&o.bob, INBOX)
            .iter()
            .any(|m| m.contains("METHOD:CANCEL"))
    );
}

#[tokio::test]
async fn objects_are_checked_and_kept_to_their_owner() {
    let o = office().await;
    let cal = o.collection(&o.alice, "calendar").unwrap();
    // Another user's calendar.
    let err = o
        .sched
        .put_object(&o.bob, &cal, "m1.ics", None, meeting("NEEDS-ACTION", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Forbidden), "{err:?}");
    // Not iCalendar.
    let err = o
        .sched
        .put_object(&o.alice, &cal, "bad.ics", None, "BEGIN:VCARD\r\n".into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    // One UID per collection.
    o.sched
        .put_object(&o.alice, &cal, "m1.ics", None, meeting("NEEDS-ACTION", "x"))
        .await
        .unwrap();
    let err = o
        .sched
        .put_object(
            &o.alice,
            &cal,
            "other.ics",
            None,
            meeting("NEEDS-ACTION", "y"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Exists(_)), "{err:?}");
    // Nothing but the first object was stored, and Bob was invited once.
    assert_eq!(o.texts(&o.alice, "calendar").len(), 1);
    assert_eq!(o.texts(&o.bob, INBOX).len(), 1);
}
