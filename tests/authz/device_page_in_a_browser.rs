//! The approval page in real headless Chromium, opened by the link `bankguard demo` prints
//! (`/device?user=alice`): a person sees the transfer under its reference code and who asks, clicks
//! Approve or Deny, reads which transfer they decided, and finds it in their history. Every screenshot
//! is taken after the page was checked to show what it should.

use std::time::Duration;

use serde_json::json;

use crate::support::Transfer;
use crate::support::browser::{Browser, screenshot_path};
use crate::support::dev::Dev;

const WAIT: Duration = Duration::from_secs(6);

#[tokio::test]
async fn a_person_approves_a_transfer_on_the_device_page_and_the_client_gets_its_token() {
    let dev = Dev::start().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/device?user=alice", dev.issuer())).await;
    assert_eq!(browser.text("h1").await, "Approvals for Alice Martin", "the link opens alice's page, not the picker");
    browser.wait_for_text("#pending", "No requests are waiting", Duration::from_secs(5)).await;

    // The request arrives while the page is open: it appears without a reload.
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.00").with_memo("Dinner");
    let reference = transfer.intent_id[4..8].to_owned();
    let auth_req_id = dev.request_transfer_approval("alice", &transfer).await;
    let card = browser.wait_for("article.request", WAIT).await;

    let shown = card.text().await;
    assert!(
        shown.contains("25.00 USD from Everyday Checking (CHK-4821) to Checking (CHK-3307, Bob Okafor)"),
        "{shown}"
    );
    assert!(shown.contains("Dinner") && shown.contains("left"), "{shown}");
    assert_eq!(browser.text("article.request .reference").await, format!("Reference {reference}"));
    assert!(
        font_size(&browser, "article.request .reference").await >= 1.5 * font_size(&browser, ".summary").await,
        "the reference is in large type"
    );
    assert_eq!(browser.text("article.request .client").await, "bankguard MCP server", "the client's name, not its id");
    browser.screenshot(&screenshot_path("device-approval.png")).await;
    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "authorization_pending");

    browser.click("button.approve").await;
    let confirmation = Confirmation {
        headline: "You approved this transfer",
        reference: &reference,
        transfer: "25.00 USD to Checking (CHK-3307, Bob Okafor)",
        consequence: "bankguard MCP server may now make this transfer, once.",
    };
    confirmation.is_shown_in(&browser).await;
    let history = browser.text("#history").await;
    assert!(history.contains("Approved 25.00 USD from Everyday Checking (CHK-4821)"), "{history}");
    assert!(history.contains(&format!("· Reference {reference}")), "{history}");
    assert!(browser.text("#pending").await.contains("No requests are waiting"));
    browser.screenshot(&screenshot_path("device-approved.png")).await;

    let reply = dev.poll(&auth_req_id).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body["access_token"].is_string());
    for file in ["device-approval.png", "device-approved.png"] {
        let png = std::fs::read(screenshot_path(file)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{file}");
    }
}

#[tokio::test]
async fn a_denial_and_an_expiry_go_to_the_history_the_page_keeps() {
    let dev = Dev::start().await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/device?user=alice", dev.issuer())).await;
    browser.wait_for_text("#history", "No decisions yet", WAIT).await;
    let expiring = Transfer::new("acc_alice_sav", "acc_alice_chk", "5.00");
    let reply = dev.ask_transfer_approval(&dev.mcp_auth(), "alice", &expiring, &[("requested_expiry", "4")]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    browser.wait_for_text("#pending", "5.00 USD from Rainy Day Savings", WAIT).await;

    // Nobody decides: it leaves the pending list for the history without a reload.
    browser.wait_for_text("#history", "Expired 5.00 USD from Rainy Day Savings (SAV-7390)", WAIT).await;
    browser.wait_for_text("#pending", "No requests are waiting", WAIT).await;

    let denied = Transfer::new("acc_alice_chk", "acc_bob_chk", "250.00");
    let reference = denied.intent_id[4..8].to_owned();
    // Asked for the longest wait there is: the countdown (the page's script) reads in days.
    let reply = dev.ask_transfer_approval(&dev.mcp_auth(), "alice", &denied, &[("requested_expiry", "259200")]).await;
    let auth_req_id = reply.body["auth_req_id"].as_str().unwrap().to_owned();
    browser.wait_for_text("#pending", "250.00 USD", WAIT).await;
    assert_eq!(browser.text("#pending .countdown").await, "2 d 23 h left");
    browser.click("button.deny").await;
    let confirmation = Confirmation {
        headline: "You denied this transfer",
        reference: &reference,
        transfer: "250.00 USD to Checking (CHK-3307, Bob Okafor)",
        consequence: "No money moves: bankguard MCP server is told you said no.",
    };
    confirmation.is_shown_in(&browser).await;

    let entries = browser.execute(
        "return Array.from(document.querySelectorAll('#history li')).map(function (li) { return li.innerText; });",
        vec![],
    );
    let entries = entries.await;
    let entries: Vec<&str> = entries.as_array().unwrap().iter().map(|entry| entry.as_str().unwrap()).collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries[0].contains("\nDenied 250.00 USD from Everyday Checking (CHK-4821)"), "latest first: {entries:?}");
    assert!(entries[1].contains("\nExpired 5.00 USD from Rainy Day Savings"), "{entries:?}");
    let says_when = |entry: &str| {
        entry.lines().next().is_some_and(|when| when.len() == "2026-12-05 20:52:26 UTC".len() && when.ends_with(" UTC"))
    };
    assert!(entries.iter().all(|entry| says_when(entry)), "each says when first: {entries:?}");
    browser.screenshot(&screenshot_path("device-history.png")).await;
    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "access_denied");
}

/// What the page should say after a decision.
struct Confirmation<'a> {
    headline: &'a str,
    reference: &'a str,
    transfer: &'a str,
    consequence: &'a str,
}

impl Confirmation<'_> {
    /// Waits for the confirmation after a click, and checks it names the transfer and the outcome.
    async fn is_shown_in(&self, browser: &Browser) {
        browser.wait_for_text(".confirmation", self.headline, Duration::from_secs(5)).await;
        let shown = browser.text(".confirmation").await;
        let reference = format!("Reference {}", self.reference);
        for expected in [reference.as_str(), self.transfer, self.consequence] {
            assert!(shown.contains(expected), "{expected:?} in {shown:?}");
        }
    }
}

/// The computed font size of the first match of `css`, in CSS pixels.
async fn font_size(browser: &Browser, css: &str) -> f64 {
    let size = browser
        .execute(
            "return parseFloat(getComputedStyle(document.querySelector(arguments[0])).fontSize);",
            vec![json!(css)],
        )
        .await;
    size.as_f64().unwrap_or_else(|| panic!("no font size for `{css}`: {size}"))
}
