//! The approval page in real headless Chromium: a person sees the transfer, clicks Approve, and the
//! client's next token request succeeds.

use std::time::Duration;

use crate::support::Transfer;
use crate::support::browser::{Browser, screenshot_path};
use crate::support::dev::Dev;

#[tokio::test]
async fn a_person_approves_a_transfer_on_the_device_page_and_the_client_gets_its_token() {
    let dev = Dev::start().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/device?user=alice", dev.issuer())).await;
    browser.wait_for_text("#pending", "No requests are waiting", Duration::from_secs(5)).await;

    // The request arrives while the page is open: it appears without a reload.
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.00").with_memo("Dinner");
    let auth_req_id = dev.request_transfer_approval("alice", &transfer).await;
    let card = browser.wait_for("article.request", Duration::from_secs(6)).await;

    let shown = card.text().await;
    assert!(
        shown.contains("25.00 USD from Everyday Checking (CHK-4821) to Checking (CHK-3307, Bob Okafor)"),
        "{shown}"
    );
    assert!(shown.contains("Dinner") && shown.contains("bankguard-mcp") && shown.contains("left"), "{shown}");
    browser.screenshot(&screenshot_path("device-approval.png")).await;
    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "authorization_pending");

    browser.click("button.approve").await;
    browser.wait_for_text(".notice", "approved", Duration::from_secs(5)).await;

    let reply = dev.poll(&auth_req_id).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body["access_token"].is_string());
    assert!(browser.page_text().await.contains("No requests are waiting"));
    let png = std::fs::read(screenshot_path("device-approval.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}
