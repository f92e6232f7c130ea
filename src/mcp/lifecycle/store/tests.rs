//! The store's guarantees, on SQLite and (where a server is given) on PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::ciba::types::AuthReqId;
use crate::clock::ManualClock;

pub(super) fn terms() -> TransferIntent {
    TransferIntent::new(
        AccountLabel { id: "acc_alice_chk".into(), masked_number: "CHK-4821".into() },
        AccountLabel { id: "acc_bob_chk".into(), masked_number: "CHK-3307".into() },
        MinorUnits(2500),
        "USD".parse().unwrap(),
        None,
    )
}

pub(super) fn alice() -> Holder {
    Holder::configured("alice")
}

async fn store() -> (tempfile::TempDir, IntentStore, ManualClock) {
    let dir = tempfile::tempdir().unwrap();
    let (clock, hand) = Clock::manual(Millis(1_000_000));
    let store = IntentStore::in_data_dir(dir.path().to_owned(), clock);
    store.open().await.unwrap();
    (dir, store, hand)
}

/// A store of each kind this run reaches: SQLite always; PostgreSQL when the run started a server
/// (`scripts/postgres.sh`, which `scripts/test.sh` runs), each in a database of its own.
pub(super) async fn every_store() -> Vec<(&'static str, TestStore)> {
    let (dir, store, _hand) = store().await;
    let mut stores = vec![("sqlite", TestStore { store, _dir: Some(dir) })];
    if let Some(database) = postgres_database().await {
        stores.push(("postgres", TestStore { store: database.replica().await, _dir: None }));
    }
    stores
}

pub(super) struct TestStore {
    pub(super) store: IntentStore,
    pub(super) _dir: Option<tempfile::TempDir>,
}

/// A fresh PostgreSQL database, or `None` when this run has no server; in CI a missing server fails.
pub(super) async fn postgres_database() -> Option<TestDatabase> {
    use sqlx::Connection;
    let Ok(url) = std::env::var("TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the PostgreSQL store tests: start a server with scripts/postgres.sh (scripts/test.sh does)"
        );
        return None;
    };
    let password = std::env::var("TEST_POSTGRES_PASSWORD").ok();
    let admin = PostgresLocation::parse(&url, password.as_deref(), 4).unwrap();
    let name = format!("store_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::PgConnection::connect_with(&admin.options).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut connection).await.unwrap();
    let base = url.rsplit_once('/').unwrap().0;
    Some(TestDatabase { url: format!("{base}/{name}"), password })
}

pub(super) struct TestDatabase {
    url: String,
    password: Option<String>,
}

impl TestDatabase {
    /// One more server process's view of the database.
    pub(super) async fn replica(&self) -> IntentStore {
        let location = PostgresLocation::parse(&self.url, self.password.as_deref(), 4).unwrap();
        let store = IntentStore::new(StoreLocation::Postgres(Box::new(location)), Clock::system());
        store.open().await.unwrap();
        store
    }
}

pub(super) fn accepted() -> Event {
    Event::RequestAccepted { auth_req_id: AuthReqId::new("req-1"), expires_at: Millis(1_300_000), interval_seconds: 5 }
}

#[tokio::test]
async fn a_silent_runners_intents_are_taken_over_and_its_writes_refused_from_then_on() {
    let (_dir, store, hand) = store().await;
    let (old, new) = (RunnerId::new(), RunnerId::new());
    store.heartbeat(&old).await.unwrap();
    store.heartbeat(&new).await.unwrap();
    let Claim::Created(intent) =
        store.create(&alice(), None, "f", &terms(), &old, &Admission::pending_at_most(10)).await.unwrap()
    else {
        panic!("created")
    };
    let pending = store.apply(&intent, accepted()).await.unwrap();

    // While the old runner's heartbeat is fresh, nobody takes its intent.
    hand.advance(Duration::from_secs(10));
    store.heartbeat(&new).await.unwrap();
    assert!(store.claim_stale(Some("alice"), &new, Duration::from_secs(15)).await.unwrap().is_empty());

    // Silent for longer than the stale bound: the intent moves, once, to the runner that asked.
    hand.advance(Duration::from_secs(6));
    let claimed = store.claim_stale(Some("alice"), &new, Duration::from_secs(15)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].runner.as_deref(), Some(new.0.as_str()));
    assert!(store.claim_stale(Some("alice"), &new, Duration::from_secs(15)).await.unwrap().is_empty());

    // The old runner wakes up and tries to record the approval it got: refused.
    let token = crate::ciba::types::Secret::new("t");
    let late = store.apply(&pending, Event::Approved { token, token_expires_at: Millis(2_000_000) }).await;
    assert!(matches!(late, Err(ApplyError::Conflict(current)) if current.status() == Status::Pending));
}

#[tokio::test]
async fn a_runner_that_stops_cleanly_hands_its_intents_back_at_once() {
    for (kind, TestStore { store, .. }) in every_store().await {
        eprintln!("on {kind}");
        let (old, new) = (RunnerId::new(), RunnerId::new());
        store.heartbeat(&old).await.unwrap();
        store.create(&alice(), None, "f", &terms(), &old, &Admission::pending_at_most(10)).await.unwrap();
        store.retire(&old).await.unwrap();
        assert_eq!(store.claim_stale(Some("alice"), &new, Duration::from_secs(15)).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_cancel_and_an_approval_racing_for_one_intent_cannot_both_win() {
    for (kind, TestStore { store, .. }) in every_store().await {
        eprintln!("on {kind}");
        let runner = RunnerId::new();
        let Claim::Created(intent) =
            store.create(&alice(), None, "f", &terms(), &runner, &Admission::pending_at_most(10)).await.unwrap()
        else {
            panic!("created")
        };
        let pending = store.apply(&intent, accepted()).await.unwrap();
        let cancelled = store.apply_latest(pending.id(), Event::Cancel).await.unwrap();
        assert_eq!(cancelled.status(), Status::Cancelled);
        let token = crate::ciba::types::Secret::new("t");
        let approved = store.apply(&pending, Event::Approved { token, token_expires_at: Millis(2_000_000) }).await;
        assert!(matches!(approved, Err(ApplyError::Conflict(_))));
        assert_eq!(store.reload(pending.id()).await.unwrap().status(), Status::Cancelled);
    }
}

#[tokio::test]
async fn a_holder_at_the_pending_limit_is_refused_until_one_is_decided_and_others_are_not_held_up() {
    for (kind, TestStore { store, .. }) in every_store().await {
        eprintln!("on {kind}");
        let runner = RunnerId::new();
        let mut waiting = Vec::new();
        for key in ["k1", "k2", "k3"] {
            let Claim::Created(intent) = store
                .create(&alice(), Some(key), key, &terms(), &runner, &Admission::pending_at_most(3))
                .await
                .unwrap()
            else {
                panic!("created")
            };
            waiting.push(store.apply(&intent, accepted()).await.unwrap());
        }
        let refused = store.create(&alice(), Some("k4"), "k4", &terms(), &runner, &Admission::pending_at_most(3)).await;
        assert!(matches!(refused, Err(StoreError::TooManyPending { limit: 3 })), "{refused:?}");
        assert!(store.by_key("alice", "k4", "k4").await.unwrap().is_none(), "a refusal records nothing");

        // A retry of a key already used follows its intent, at the limit too.
        let retry =
            store.create(&alice(), Some("k2"), "k2", &terms(), &runner, &Admission::pending_at_most(3)).await.unwrap();
        assert!(matches!(retry, Claim::Existing(ref intent) if intent.id() == waiting[1].id()));

        // Another holder has limits of their own.
        let bob = Holder { subject: "auth0|bob".into(), bank_user: "bob".into(), client: None };
        let Claim::Created(bobs) =
            store.create(&bob, None, "b", &terms(), &runner, &Admission::pending_at_most(3)).await.unwrap()
        else {
            panic!("created")
        };
        assert_eq!((bobs.owner.as_str(), bobs.subject()), ("bob", "auth0|bob"));

        // Once one of alice's requests is decided, she may ask again.
        store.apply(&waiting[0], Event::Denied).await.unwrap();
        let again =
            store.create(&alice(), Some("k4"), "k4", &terms(), &runner, &Admission::pending_at_most(3)).await.unwrap();
        assert!(matches!(again, Claim::Created(ref intent) if intent.subject() == "alice"));
    }
}

#[tokio::test]
async fn a_server_for_every_holder_takes_over_every_holders_intents() {
    for (kind, TestStore { store, .. }) in every_store().await {
        eprintln!("on {kind}");
        let (old, new) = (RunnerId::new(), RunnerId::new());
        store.heartbeat(&old).await.unwrap();
        store.create(&alice(), None, "f", &terms(), &old, &Admission::pending_at_most(10)).await.unwrap();
        store
            .create(&Holder::configured("bob"), None, "f", &terms(), &old, &Admission::pending_at_most(10))
            .await
            .unwrap();
        store.retire(&old).await.unwrap();
        assert_eq!(store.claim_stale(Some("bob"), &new, Duration::from_secs(15)).await.unwrap().len(), 1);
        let rest = store.claim_stale(None, &new, Duration::from_secs(15)).await.unwrap();
        assert_eq!(rest.iter().map(|intent| intent.owner.as_str()).collect::<Vec<_>>(), ["alice"]);
    }
}

#[tokio::test]
async fn the_store_file_is_readable_by_its_owner_only() {
    let (dir, _store, _hand) = store().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(DATABASE_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

/// Replicas of one PostgreSQL store: what one machine got from a single writer, they get from the
/// database. `None` (SQLite-only runs outside CI): nothing to check.
pub(super) async fn replicas(count: usize) -> Option<(TestDatabase, Vec<Arc<IntentStore>>)> {
    let database = postgres_database().await?;
    let mut replicas = Vec::new();
    for _ in 0..count {
        replicas.push(Arc::new(database.replica().await));
    }
    Some((database, replicas))
}

#[tokio::test]
async fn one_idempotency_key_sent_to_three_replicas_at_once_makes_one_intent() {
    let Some((_database, replicas)) = replicas(3).await else { return };
    let creations = replicas.iter().map(|replica| {
        let replica = replica.clone();
        // Each replica makes its own intent id for the call it received.
        async move {
            replica
                .create(&alice(), Some("same-key"), "f", &terms(), &RunnerId::new(), &Admission::pending_at_most(10))
                .await
                .unwrap()
        }
    });
    let claims = futures::future::join_all(creations).await;
    let created: Vec<_> = claims.iter().filter(|claim| matches!(claim, Claim::Created(_))).collect();
    assert_eq!(created.len(), 1, "{claims:?}");
    let ids: std::collections::HashSet<_> = claims
        .iter()
        .map(|claim| match claim {
            Claim::Created(intent) | Claim::Existing(intent) => intent.id().to_owned(),
        })
        .collect();
    assert_eq!(ids.len(), 1, "every replica follows the one intent");
}

#[tokio::test]
async fn the_pending_limit_holds_across_replicas_creating_at_once() {
    let Some((_database, replicas)) = replicas(3).await else { return };
    let creations =
        (0..12).map(|n| {
            let replica = replicas[n % 3].clone();
            async move {
                replica.create(&alice(), None, "f", &terms(), &RunnerId::new(), &Admission::pending_at_most(3)).await
            }
        });
    let results = futures::future::join_all(creations).await;
    let created = results.iter().filter(|result| matches!(result, Ok(Claim::Created(_)))).count();
    let refused = results.iter().filter(|result| matches!(result, Err(StoreError::TooManyPending { .. }))).count();
    assert_eq!((created, refused), (3, 9));
}

#[tokio::test]
async fn replicas_claiming_at_once_take_each_intent_exactly_once() {
    let Some((_database, replicas)) = replicas(3).await else { return };
    let gone = RunnerId::new();
    replicas[0].heartbeat(&gone).await.unwrap();
    for _ in 0..30 {
        replicas[0].create(&alice(), None, "f", &terms(), &gone, &Admission::pending_at_most(100)).await.unwrap();
    }
    replicas[0].retire(&gone).await.unwrap();
    let claims = replicas.iter().map(|replica| {
        let replica = replica.clone();
        async move {
            let runner = RunnerId::new();
            replica.heartbeat(&runner).await.unwrap();
            replica.claim_stale(None, &runner, Duration::from_secs(15)).await.unwrap()
        }
    });
    let claimed: Vec<String> =
        futures::future::join_all(claims).await.into_iter().flatten().map(|intent| intent.id().to_owned()).collect();
    let distinct: std::collections::HashSet<_> = claimed.iter().collect();
    assert_eq!((claimed.len(), distinct.len()), (30, 30));
}

#[tokio::test]
async fn heartbeats_go_stale_by_the_databases_clock() {
    let Some((_database, replicas)) = replicas(2).await else { return };
    let (old, new) = (RunnerId::new(), RunnerId::new());
    replicas[0].heartbeat(&old).await.unwrap();
    replicas[1].heartbeat(&new).await.unwrap();
    replicas[0].create(&alice(), None, "f", &terms(), &old, &Admission::pending_at_most(10)).await.unwrap();
    assert!(replicas[1].claim_stale(None, &new, Duration::from_secs(60)).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(20)).await;
    let claimed = replicas[1].claim_stale(None, &new, Duration::from_millis(10)).await.unwrap();
    assert_eq!(claimed.len(), 1, "silent for longer than the stale bound, by the database's clock");
}

#[tokio::test]
async fn a_change_made_on_one_replica_wakes_a_watcher_on_another() {
    let Some((_database, replicas)) = replicas(2).await else { return };
    let runner = RunnerId::new();
    let Claim::Created(intent) =
        replicas[0].create(&alice(), None, "f", &terms(), &runner, &Admission::pending_at_most(10)).await.unwrap()
    else {
        panic!("created")
    };
    let mut watching = replicas[1].watch(intent.id(), intent.status());
    replicas[0].apply(&intent, accepted()).await.unwrap();
    // Only the notification can tell replica 1: it wrote nothing.
    tokio::time::timeout(Duration::from_secs(5), watching.changed()).await.expect("woken").unwrap();
    assert_eq!(*watching.borrow(), Status::Pending);
}

#[tokio::test]
async fn a_ping_reaching_another_replica_is_passed_to_every_replica_and_a_hand_back_is_announced() {
    let Some((_database, replicas)) = replicas(2).await else { return };
    let runner = RunnerId::new();
    let Claim::Created(intent) =
        replicas[0].create(&alice(), None, "f", &terms(), &runner, &Admission::pending_at_most(10)).await.unwrap()
    else {
        panic!("created")
    };
    let digest = crate::mcp::lifecycle::waits::digest("the notification token");
    replicas[0].record_ping_digest(intent.id(), &digest).await.unwrap();
    let mut heard = replicas[0].events();

    assert!(replicas[1].forward_ping(&digest).await.unwrap());
    let event = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await.expect("heard").unwrap();
    assert_eq!(event, StoreEvent::Pinged(digest));
    assert!(!replicas[1].forward_ping(&crate::mcp::lifecycle::waits::digest("a guess")).await.unwrap());

    // Once decided, the token no longer wakes anything.
    let pending = replicas[0].apply(&intent, accepted()).await.unwrap();
    replicas[0].apply(&pending, Event::Denied).await.unwrap();
    assert!(!replicas[1].forward_ping(&digest).await.unwrap());

    replicas[0].heartbeat(&runner).await.unwrap();
    replicas[1].retire(&runner).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await.expect("heard").unwrap();
    assert_eq!(event, StoreEvent::HandedBack);
}

#[test]
fn a_postgres_location_never_shows_its_password() {
    let location =
        PostgresLocation::parse("postgres://bank:s3cret-in-url@db.internal:5432/bankguard", None, 4).unwrap();
    assert!(!format!("{location:?}").contains("s3cret"), "{location:?}");
    let location = PostgresLocation::parse("postgres://bank@db.internal/bankguard", Some("s3cret-given"), 4).unwrap();
    assert!(!format!("{location:?}").contains("s3cret"), "{location:?}");
    let refused = PostgresLocation::parse("mysql://bank:s3cret@db.internal/x", None, 4).unwrap_err();
    assert!(!refused.contains("s3cret"), "{refused}");
    let refused = PostgresLocation::parse("postgres://bank:s3cret@db.internal:notaport/x", None, 4).unwrap_err();
    assert!(!refused.contains("s3cret"), "{refused}");
}
