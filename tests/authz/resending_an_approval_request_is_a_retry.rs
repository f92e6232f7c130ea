//! A client whose `/bc-authorize` answer was lost asks again: an identical request for the same
//! intent, while the first is pending, is the first request, not a second approval on the device.

use crate::support::Transfer;
use crate::support::dev::Dev;

#[tokio::test]
async fn an_identical_resend_gets_the_same_request_and_the_device_shows_it_once() {
    let dev = Dev::start().await; // interval 1 s
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.00").with_memo("Rent");
    let first = dev.ask_transfer_approval(&dev.mcp_auth(), "alice", &transfer, &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let auth_req_id = first.body["auth_req_id"].as_str().unwrap();
    // Polled too fast once: the request's interval has grown to 6 s.
    dev.poll(auth_req_id).await;
    assert_eq!(dev.poll(auth_req_id).await.body["error"], "slow_down");

    let resent = dev.ask_transfer_approval(&dev.mcp_auth(), "alice", &transfer, &[]).await;

    assert_eq!(resent.status, 200, "{}", resent.body);
    assert_eq!(resent.body["auth_req_id"], auth_req_id);
    assert_eq!(resent.body["interval"], 6, "the request's own interval, as grown by slow_down");
    let left = resent.body["expires_in"].as_i64().unwrap();
    let lifetime = first.body["expires_in"].as_i64().unwrap();
    assert!((lifetime - 5..=lifetime).contains(&left), "the time the request has left: {left} of {lifetime}");
    let pending = dev.device().pending(Some("alice")).await.unwrap();
    assert_eq!(pending.iter().map(|p| p.auth_req_id.as_str()).collect::<Vec<_>>(), [auth_req_id]);

    // One request, one approval, one exchange.
    dev.approve(auth_req_id).await;
    assert_eq!(dev.poll(auth_req_id).await.status, 200);
    assert!(dev.device().pending(Some("alice")).await.unwrap().is_empty());
}
