//! The wait loop against a scripted token endpoint on loopback, on a manual clock: each answer the
//! provider gives, and when the client asked, to the millisecond.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::ciba::request::{ApprovalRequest, DEFAULT_INTERVAL};
use crate::ciba::types::{BindingMessage, LoginHint};
use crate::clock::{ManualClock, Millis};

const START: Millis = Millis(1_700_000_000_000);
/// How far the test moves the clock each time the wait is asleep.
const STEP: Duration = Duration::from_millis(500);
/// The client's HTTP timeout here, so a stalled answer costs a moment, not ten seconds.
const HTTP_TIMEOUT: Duration = Duration::from_millis(300);

/// One scripted answer of the token endpoint.
#[derive(Clone)]
enum Answer {
    Reply {
        status: u16,
        retry_after: Option<&'static str>,
        body: &'static str,
    },
    /// Answers nothing until the client has given up.
    Stall,
}

fn reply(status: u16, body: &'static str) -> Answer {
    Answer::Reply { status, retry_after: None, body }
}

const PENDING: &str = r#"{"error":"authorization_pending"}"#;
const TOKENS: &str = r#"{"access_token":"at-1","token_type":"Bearer","expires_in":300}"#;

/// The token endpoint: answers from the script (the last answer repeats), and notes when each poll
/// arrived on the manual clock and how many were ever in flight at once.
struct Provider {
    clock: Clock,
    script: Mutex<VecDeque<Answer>>,
    polls: Mutex<Vec<Millis>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// Counts a poll as in flight until its answer is sent or the client hangs up.
struct InFlight(Arc<Provider>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn token_endpoint(State(provider): State<Arc<Provider>>) -> Response {
    provider.polls.lock().unwrap().push(provider.clock.now());
    let now_in_flight = provider.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    provider.most_in_flight.fetch_max(now_in_flight, Ordering::SeqCst);
    let _in_flight = InFlight(provider.clone());
    let answer = {
        let mut script = provider.script.lock().unwrap();
        if script.len() > 1 { script.pop_front() } else { script.front().cloned() }
    };
    match answer.expect("a scripted answer") {
        Answer::Reply { status, retry_after, body } => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            if let Some(seconds) = retry_after {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
            }
            (StatusCode::from_u16(status).unwrap(), headers, body).into_response()
        }
        Answer::Stall => {
            tokio::time::sleep(HTTP_TIMEOUT + Duration::from_millis(50)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

async fn bc_authorize() -> &'static str {
    r#"{"auth_req_id":"req-1","expires_in":120}"#
}

struct Setup {
    client: CibaClient,
    provider: Arc<Provider>,
    clock: Clock,
    hand: ManualClock,
}

async fn setup(script: Vec<Answer>) -> Setup {
    let (clock, hand) = Clock::manual(START);
    let provider = Arc::new(Provider {
        clock: clock.clone(),
        script: Mutex::new(script.into()),
        polls: Mutex::default(),
        in_flight: AtomicUsize::new(0),
        most_in_flight: AtomicUsize::new(0),
    });
    let router = axum::Router::new()
        .route("/oauth/token", axum::routing::post(token_endpoint))
        .route("/bc-authorize", axum::routing::post(bc_authorize))
        .with_state(provider.clone());
    let http = crate::http_client::builder().timeout(HTTP_TIMEOUT).build().unwrap();
    Setup { client: crate::ciba::loopback_client(router, http).await, provider, clock, hand }
}

fn started(clock: &Clock, expires_in: Duration) -> StartedApproval {
    StartedApproval {
        auth_req_id: AuthReqId::new("req-1"),
        expires_at: clock.now().plus(expires_in),
        expires_in,
        interval: DEFAULT_INTERVAL,
    }
}

impl Setup {
    /// Runs the wait to its end, moving the clock only while the wait sleeps.
    async fn wait(&self, started: &StartedApproval) -> Result<ApprovalOutcome, CibaError> {
        let cancel = CancellationToken::new();
        let wait = self.client.wait(started, &cancel, &self.clock);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                outcome = &mut wait => return outcome,
                () = tokio::time::sleep(Duration::from_millis(1)) => {
                    if self.hand.sleepers() > 0 {
                        self.hand.advance(STEP);
                    }
                }
            }
        }
    }

    /// Seconds after the start at which each poll arrived.
    fn poll_times(&self) -> Vec<f64> {
        self.provider.polls.lock().unwrap().iter().map(|at| START.until(*at).as_secs_f64()).collect()
    }
}

#[test]
fn backoff_starts_at_the_interval_and_doubles_up_to_thirty_seconds_or_the_interval() {
    let five = Duration::from_secs(5);
    let pauses: Vec<u64> = (1..=6).map(|failures| backoff(five, failures).as_secs()).collect();
    assert_eq!(pauses, [5, 10, 20, 30, 30, 30]);
    assert_eq!(backoff(Duration::from_secs(45), 3), Duration::from_secs(45), "a long interval is the cap");
    assert_eq!(backoff(five, u32::MAX), MAX_BACKOFF, "no overflow");
}

#[tokio::test]
async fn start_sets_the_expiry_from_the_clock_it_is_given() {
    let setup = setup(vec![]).await;
    let request = ApprovalRequest {
        scope: "openid".into(),
        login_hint: LoginHint::plain("alice"),
        binding_message: BindingMessage::new("Sign in").unwrap(),
        audience: None,
        requested_expiry: None,
        authorization_details: None,
        client_notification_token: None,
    };

    let started = setup.client.start(&request, &setup.clock).await.unwrap();

    assert_eq!(started.expires_at, START.plus(Duration::from_secs(120)));
    assert_eq!(started.interval, DEFAULT_INTERVAL, "CIBA Core §7.3: 5 s when the provider names none");
}

#[tokio::test]
async fn every_kind_of_transient_failure_is_retried_with_backoff_until_the_holder_approves() {
    let setup = setup(vec![
        reply(500, ""),
        reply(200, r#"{"access_token":"at-"#),
        reply(503, r#"{"error":"temporarily_unavailable"}"#),
        reply(400, r#"{"error":"server_error","error_description":"restarting"}"#),
        Answer::Stall,
        Answer::Reply { status: 429, retry_after: Some("40"), body: r#"{"error":"too_many_requests"}"# },
        reply(400, PENDING),
        reply(200, TOKENS),
    ])
    .await;
    let started = started(&setup.clock, Duration::from_secs(300));

    let outcome = setup.wait(&started).await;

    assert!(matches!(outcome, Ok(ApprovalOutcome::Approved(_))), "{outcome:?}");
    // After each failure a longer pause: 5, 10, 20, 30, 30 (the cap), then 40 (Retry-After beats the
    // cap). A pending answer resets the backoff, so the approval is fetched one interval later.
    assert_eq!(setup.poll_times(), [5.0, 10.0, 20.0, 40.0, 70.0, 100.0, 140.0, 145.0]);
    assert_eq!(setup.provider.most_in_flight.load(Ordering::SeqCst), 1, "never two polls in flight");
}

#[tokio::test]
async fn a_provider_that_never_recovers_ends_the_wait_at_expiry_not_before() {
    let setup = setup(vec![reply(502, "<html>Bad gateway</html>")]).await;
    let started = started(&setup.clock, Duration::from_secs(60));

    let outcome = setup.wait(&started).await;

    assert!(matches!(outcome, Ok(ApprovalOutcome::Expired)), "{outcome:?}");
    assert_eq!(setup.poll_times(), [5.0, 10.0, 20.0, 40.0]);
    assert_eq!(setup.clock.now(), started.expires_at, "it waited until the request expired");
}

#[tokio::test]
async fn slow_down_still_grows_the_interval_for_good() {
    let setup = setup(vec![
        Answer::Reply { status: 400, retry_after: Some("12"), body: r#"{"error":"slow_down","interval":12}"# },
        reply(400, PENDING),
        reply(500, ""),
        reply(200, TOKENS),
    ])
    .await;
    let started = started(&setup.clock, Duration::from_secs(300));

    let outcome = setup.wait(&started).await;

    assert!(matches!(outcome, Ok(ApprovalOutcome::Approved(_))), "{outcome:?}");
    // 5 + 5 = 10 would do, but the provider said 12; a failure then backs off from the grown interval.
    assert_eq!(setup.poll_times(), [5.0, 17.0, 29.0, 41.0]);
}

#[tokio::test]
async fn protocol_answers_end_the_wait_at_once() {
    let cases: [(u16, &str, &str); 6] = [
        (403, r#"{"error":"access_denied"}"#, "Denied"),
        (400, r#"{"error":"expired_token"}"#, "Expired"),
        (400, r#"{"error":"invalid_grant"}"#, "GrantInvalid"),
        (400, r#"{"error":"unauthorized_client"}"#, "Err unauthorized_client"),
        (401, r#"{"error":"invalid_client"}"#, "Err invalid_client"),
        (400, r#"{"error":"invalid_request","error_description":"auth_req_id is required"}"#, "Err invalid_request"),
    ];
    for (status, body, expected) in cases {
        let setup = setup(vec![reply(status, body), reply(200, TOKENS)]).await;
        let started = started(&setup.clock, Duration::from_secs(300));

        let outcome = match setup.wait(&started).await {
            Ok(ApprovalOutcome::Denied) => "Denied".to_owned(),
            Ok(ApprovalOutcome::Expired) => "Expired".to_owned(),
            Ok(ApprovalOutcome::GrantInvalid) => "GrantInvalid".to_owned(),
            Ok(other) => format!("{other:?}"),
            Err(CibaError::Refused(refusal)) => format!("Err {}", refusal.error),
            Err(other) => format!("Err {other}"),
        };

        assert_eq!(outcome, expected, "HTTP {status} {body}");
        assert_eq!(setup.poll_times(), [5.0], "{expected}: one poll, no retry");
    }
}

#[tokio::test]
async fn a_transient_failure_never_names_the_request() {
    let setup = setup(vec![reply(500, r#"{"error":"server_error","error_description":"boom"}"#)]).await;
    let answer = setup.client.poll(&AuthReqId::new("req-secret-42")).await.unwrap();
    let Poll::Unavailable { error, .. } = answer else { panic!("a 500 is transient") };
    assert!(!error.to_string().contains("req-secret-42"), "{error}");
}
