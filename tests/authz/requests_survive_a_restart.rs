use std::time::Duration;

use crate::support::dev::Dev;

#[tokio::test]
async fn a_pending_request_survives_a_restart_and_can_still_be_approved() {
    let dev = Dev::start().await;
    let auth_req_id = dev.request_sign_in(&[]).await;
    dev.poll(&auth_req_id).await;
    let slowed = dev.poll(&auth_req_id).await;
    assert_eq!(slowed.body["interval"], 6);

    let dev = dev.restart().await;

    let pending = dev.device().pending(Some("alice")).await.unwrap();
    assert_eq!(pending.iter().map(|p| p.auth_req_id.as_str()).collect::<Vec<_>>(), [auth_req_id.as_str()]);
    // Pacing is not durable (a poll costs no write): after a restart the first poll is simply pending.
    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "authorization_pending");
    dev.approve(&auth_req_id).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let reply = dev.poll(&auth_req_id).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}
