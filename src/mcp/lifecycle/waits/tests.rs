//! The scheduler against a token endpoint on loopback that answers `authorization_pending` (or
//! approves one request), on a manual clock: which request is polled when, and how often.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::*;
use crate::ciba::request::StartedApproval;
use crate::clock::ManualClock;

const START: Millis = Millis(1_700_000_000_000);
const FALLBACK: Duration = Duration::from_secs(60);
const WAITS: usize = 1_000;
const APPROVED: &str = "req-approved";

/// Counts the token requests per `auth_req_id`.
#[derive(Default)]
struct Provider {
    polls: Mutex<HashMap<String, usize>>,
}

async fn token_endpoint(State(provider): State<Arc<Provider>>, body: String) -> Response {
    let auth_req_id = url::form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "auth_req_id")
        .map(|(_, value)| value.into_owned())
        .expect("an auth_req_id");
    *provider.polls.lock().unwrap().entry(auth_req_id.clone()).or_default() += 1;
    if auth_req_id == APPROVED {
        return (StatusCode::OK, r#"{"access_token":"at-1","token_type":"Bearer","expires_in":300}"#).into_response();
    }
    (StatusCode::BAD_REQUEST, r#"{"error":"authorization_pending"}"#).into_response()
}

struct Setup {
    waits: Arc<Waits>,
    provider: Arc<Provider>,
    clock: Clock,
    hand: ManualClock,
    ended: Arc<Mutex<Vec<(String, &'static str)>>>,
    stop: CancellationToken,
}

async fn setup() -> Setup {
    let (clock, hand) = Clock::manual(START);
    let provider = Arc::new(Provider::default());
    let router =
        axum::Router::new().route("/oauth/token", axum::routing::post(token_endpoint)).with_state(provider.clone());
    let ciba = Arc::new(crate::ciba::loopback_client(router, crate::http_client::builder().build().unwrap()).await);
    let waits = Arc::new(Waits::new(ciba, clock.clone()));
    let ended = Arc::new(Mutex::new(Vec::new()));
    let resume: Resume = {
        let ended = ended.clone();
        Arc::new(move |waiting: Waiting, end: WaitEnd| {
            let end = match end {
                WaitEnd::Answered(Ok(ApprovalOutcome::Approved(_))) => "approved",
                WaitEnd::Answered(Ok(ApprovalOutcome::Expired)) => "expired",
                WaitEnd::Answered(_) => "another answer",
                WaitEnd::Stopped => "stopped",
            };
            ended.lock().unwrap().push((waiting.intent_id.to_string(), end));
        })
    };
    let stop = CancellationToken::new();
    tokio::spawn(waits.clone().run(stop.clone(), TaskTracker::new(), resume));
    Setup { waits, provider, clock, hand, ended, stop }
}

impl Setup {
    /// A wait for `intent-{n}` on `req-{n}` (or on `auth_req_id`), expiring in five minutes, in ping mode.
    fn waiting(&self, intent_id: &str, auth_req_id: &str, ping: Option<PingRegistration>) -> Waiting {
        let started = StartedApproval {
            auth_req_id: AuthReqId::new(auth_req_id),
            expires_at: self.clock.now().plus(Duration::from_secs(300)),
            expires_in: Duration::from_secs(300),
            interval: Duration::from_secs(5),
        };
        Waiting {
            intent_id: Arc::from(intent_id),
            auth_req_id: started.auth_req_id.clone(),
            pacing: Pacing::new(&started, Some(FALLBACK), self.clock.now()),
            cancel: self.stop.child_token(),
            ping,
        }
    }

    /// Schedules waits `0..n`, each with its ping token `token-{i}` registered.
    fn schedule_many(&self, n: usize) {
        for i in 0..n {
            let ping = self.waits.expect_ping(&Secret::new(format!("token-{i}")), &format!("intent-{i}"));
            self.waits.schedule(self.waiting(&format!("intent-{i}"), &format!("req-{i}"), Some(ping)));
        }
    }

    fn polls(&self) -> HashMap<String, usize> {
        self.provider.polls.lock().unwrap().clone()
    }

    fn total_polls(&self) -> usize {
        self.polls().values().sum()
    }

    /// Waits (in real time, briefly) until the provider has seen `count` polls in all.
    async fn until_polled(&self, count: usize) {
        for _ in 0..2_000 {
            if self.total_polls() >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{} polls, expected {count}", self.total_polls());
    }

    /// Lets the scheduler run for a moment of real time without moving the manual clock.
    async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_ping_among_a_thousand_waits_polls_that_one_request_and_no_other() {
    let setup = setup().await;
    setup.schedule_many(WAITS);
    setup.settle().await;
    assert_eq!(setup.total_polls(), 0, "nothing is due before the fallback interval");
    assert_eq!(setup.waits.len(), WAITS);

    assert!(setup.waits.ping("token-417"));
    setup.until_polled(1).await;
    setup.settle().await;

    assert_eq!(setup.polls(), HashMap::from([("req-417".to_owned(), 1)]));
    assert!(!setup.waits.ping("token-unknown"), "a token nobody registered wakes nothing");
}

#[tokio::test]
async fn without_pings_each_wait_polls_once_per_fallback_interval() {
    let setup = setup().await;
    setup.schedule_many(WAITS);
    setup.settle().await;

    setup.hand.advance(FALLBACK - Duration::from_secs(1));
    setup.settle().await;
    assert_eq!(setup.total_polls(), 0, "one second before the fallback is due");

    setup.hand.advance(Duration::from_secs(1));
    setup.until_polled(WAITS).await;
    setup.settle().await;
    let polls = setup.polls();
    assert_eq!(polls.len(), WAITS);
    assert!(polls.values().all(|&count| count == 1), "one poll per wait per interval");
    assert_eq!(setup.waits.len(), WAITS, "every undecided wait is queued again");
}

#[tokio::test]
async fn a_ping_that_arrives_before_the_wait_is_queued_polls_as_soon_as_it_is() {
    let setup = setup().await;
    let ping = setup.waits.expect_ping(&Secret::new("token-early"), "intent-early");
    assert!(setup.waits.ping("token-early"));
    setup.settle().await;
    assert_eq!(setup.total_polls(), 0, "nothing to poll yet");

    setup.waits.schedule(setup.waiting("intent-early", APPROVED, Some(ping)));
    setup.until_polled(1).await;
    setup.settle().await;

    assert_eq!(*setup.ended.lock().unwrap(), [("intent-early".to_owned(), "approved")]);
    assert!(setup.waits.is_empty());
    assert!(!setup.waits.ping("token-early"), "the token is forgotten once its wait ended");
}

#[tokio::test]
async fn a_removed_wait_is_never_polled_and_an_unanswered_one_ends_at_expiry() {
    let setup = setup().await;
    setup.schedule_many(2);
    let removed = setup.waits.remove("intent-0").expect("queued");
    drop(removed);
    assert!(!setup.waits.ping("token-0"), "its token went with it");

    setup.hand.advance(Duration::from_secs(300));
    for _ in 0..400 {
        if !setup.ended.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    setup.settle().await;

    assert_eq!(*setup.ended.lock().unwrap(), [("intent-1".to_owned(), "expired")]);
    assert_eq!(setup.polls().get("req-0"), None);
}
