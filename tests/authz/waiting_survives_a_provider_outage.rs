//! The CIBA client's wait against the real provider while it restarts: polls that meet a 500, a
//! success cut short, a dropped connection or a closed port decided nothing, so the wait keeps
//! going and returns the approval the holder gives once the provider is back.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use bankguard::ciba::request::ApprovalRequest;
use bankguard::ciba::types::{BindingMessage, LoginHint, Secret};
use bankguard::ciba::wait::ApprovalOutcome;
use bankguard::ciba::{CibaClient, ProviderSettings};
use bankguard::clock::Clock;
use bankguard::config::ClientAuthMethod;

use crate::support::Transfer;
use crate::support::dev::Dev;

/// What a restarting provider behind a proxy answers, one poll each.
const FAULTY_ANSWERS: [&[u8]; 3] = [
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    // Promises 300 bytes of JSON, sends 20 and hangs up.
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 300\r\nconnection: close\r\n\r\n{\"access_token\":\"eyJ",
    // Reads the request and hangs up without a word.
    b"",
];

/// Answers the next polls on `address` with [`FAULTY_ANSWERS`], then stops listening.
async fn answer_badly(address: SocketAddr) {
    // tokio binds with SO_REUSEADDR, so the port's closed connections do not block it.
    let listener = tokio::net::TcpListener::bind(address).await.unwrap().into_std().unwrap();
    listener.set_nonblocking(false).unwrap();
    tokio::task::spawn_blocking(move || {
        for answer in FAULTY_ANSWERS {
            let (mut socket, _) = listener.accept().unwrap();
            socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            read_request(&mut socket);
            socket.write_all(answer).unwrap();
        }
    })
    .await
    .unwrap();
}

/// Reads one HTTP/1.1 request: the head, then as many body bytes as it announces.
fn read_request(socket: &mut std::net::TcpStream) {
    let mut received = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let read = socket.read(&mut chunk).unwrap();
        assert!(read > 0, "the client hung up mid-request");
        received.extend_from_slice(&chunk[..read]);
        let Some(head_end) = received.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |value| value.trim().parse::<usize>().unwrap());
        if received.len() >= head_end + 4 + length {
            return;
        }
    }
}

fn ciba_client(dev: &Dev) -> CibaClient {
    let settings = ProviderSettings {
        issuer: dev.issuer().to_owned(),
        backchannel_endpoint: None,
        token_endpoint: None,
        client_id: dev.mcp().client_id.clone(),
        client_secret: Secret::new(dev.mcp().client_secret.clone()),
        auth_method: ClientAuthMethod::ClientSecretBasic,
    };
    CibaClient::new(settings, bankguard::http_client::builder().build().unwrap())
}

#[tokio::test]
async fn a_wait_outlasts_a_provider_restart_and_returns_the_approval_given_after_it() {
    let dev = Dev::start().await; // interval 1 s
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.00");
    let ciba = ciba_client(&dev);
    let clock = Clock::system();
    let request = ApprovalRequest {
        scope: "openid create:transfer".into(),
        login_hint: LoginHint::plain("alice"),
        binding_message: BindingMessage::new(&format!("Transfer 25.00 USD #{}", &transfer.intent_id[4..8])).unwrap(),
        audience: Some(dev.config.bank_api.audience.clone()),
        requested_expiry: None,
        authorization_details: Some(Value::Array(vec![transfer.binding()])),
        client_notification_token: None,
    };
    let started = ciba.start(&request, &clock).await.unwrap();
    let cancel = CancellationToken::new();
    let wait = ciba.wait(&started, &cancel, &clock);
    tokio::pin!(wait);

    // The provider goes down before the first poll; three polls in a row fail, each differently
    // (the wait used to give up after the third), and any poll meanwhile meets a closed port.
    let outage = async {
        let stopped = dev.stop().await;
        answer_badly(stopped.authz_address()).await;
        stopped.start_again().await
    };
    let dev = tokio::select! {
        outcome = &mut wait => panic!("the wait ended during the outage: {outcome:?}"),
        dev = outage => dev,
    };
    let pending = dev.device().pending(Some("alice")).await.unwrap();
    assert_eq!(pending.len(), 1, "the request outlived the restart");
    dev.approve(pending[0].auth_req_id.as_str()).await;

    let outcome = tokio::time::timeout(Duration::from_secs(60), wait).await.expect("the wait ends after approval");

    let Ok(ApprovalOutcome::Approved(tokens)) = outcome else { panic!("not approved: {outcome:?}") };
    assert_eq!(tokens.scope.as_deref(), Some("openid create:transfer"));
    assert!(dev.device().pending(Some("alice")).await.unwrap().is_empty());
}
