//! The approval page over HTTP: what it shows, and who may use it.

use crate::support::dev::Dev;
use crate::support::{Reply, Transfer, send};

async fn page(dev: &Dev, path: &str, host: Option<&str>) -> Reply {
    let mut request = dev.http.get(format!("{}{path}", dev.issuer()));
    if let Some(host) = host {
        request = request.header("host", host);
    }
    send(request).await
}

fn html(reply: &Reply) -> &str {
    reply.body.as_str().unwrap_or_default()
}

/// The CSRF token embedded in the page's forms.
fn csrf(page: &str) -> String {
    let start = page.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    page[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_page_shows_each_pending_transfer_in_plain_words_newest_first() {
    let dev = Dev::start().await;
    let older = Transfer::new("acc_alice_sav", "acc_alice_chk", "10.00");
    let newer = Transfer::new("acc_alice_chk", "acc_bob_chk", "25.50").with_memo("<b>Dinner</b> & drinks");
    dev.request_transfer_approval("alice", &older).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    dev.request_transfer_approval("alice", &newer).await;

    let picker = page(&dev, "/device", None).await;
    assert_eq!(picker.status, 200);
    assert!(html(&picker).contains("Development device"), "the picker is labelled dev-only");
    assert!(html(&picker).contains("/device?user=alice") && html(&picker).contains("/device?user=bob"));

    let reply = page(&dev, "/device?user=alice", None).await;
    let body = html(&reply);
    assert_eq!(reply.status, 200);
    assert!(body.contains("<html lang=\"en\">"));
    let newer_at = body.find("25.50 USD from Everyday Checking (CHK-4821) to Checking (CHK-3307, Bob Okafor)").unwrap();
    let older_at =
        body.find("10.00 USD from Rainy Day Savings (SAV-7390) to Everyday Checking (CHK-4821, Alice Martin)").unwrap();
    assert!(newer_at < older_at, "newest first");
    assert!(body.contains("&lt;b&gt;Dinner&lt;/b&gt; &amp; drinks"), "request data is escaped");
    assert!(!body.contains("<b>Dinner</b>"));
    assert!(body.contains("Transfer 25.50 USD #"), "the binding message");
    let reference = &newer.intent_id[4..8];
    assert!(
        body.contains(&format!(r#"class="reference">Reference <span class="code">{reference}</span>"#)),
        "the reference code, labelled: {body}"
    );
    assert!(body.contains("Requested by <strong class=\"client\">bankguard MCP server</strong>"), "the client's name");
    assert!(body.contains(" left</span>"), "the time left");
    assert!(body.contains(">Approve</button>") && body.contains(">Deny</button>"));
    assert!(body.contains("aria-live=\"polite\""), "updates are announced to screen readers");

    let bob = page(&dev, "/device?user=bob", None).await;
    assert!(html(&bob).contains("No requests are waiting"), "alice's requests are not bob's");
    let fragment = page(&dev, "/device/pending?user=alice", None).await;
    assert!(html(&fragment).contains("25.50 USD") && !html(&fragment).contains("<html"));
}

#[tokio::test]
async fn approving_from_the_page_needs_its_csrf_token_and_origin() {
    let dev = Dev::start().await;
    let auth_req_id = dev.request_sign_in(&[]).await;
    let page_html = html(&page(&dev, "/device?user=alice", None).await).to_owned();
    let token = csrf(&page_html);
    let no_redirects = bankguard::http_client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let decide = |csrf: String, origin: Option<String>| {
        let mut request = no_redirects.post(format!("{}/device/decide", dev.issuer())).form(&[
            ("user", "alice"),
            ("auth_req_id", auth_req_id.as_str()),
            ("decision", "approve"),
            ("csrf", csrf.as_str()),
        ]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        send(request)
    };

    let forged = decide("guessed".into(), None).await;
    assert_eq!(forged.status, 403);
    let cross_site = decide(token.clone(), Some("https://evil.example".into())).await;
    assert_eq!(cross_site.status, 403);
    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "authorization_pending", "nothing was decided");

    let own_origin = dev.issuer().to_owned();
    let approved = decide(token, Some(own_origin)).await;
    assert_eq!(approved.status, 303);
    let location = approved.header("location").to_owned();
    assert!(location.starts_with("/device?user=alice&done="), "{location}");
    assert!(!location.contains(&auth_req_id), "the request's id stays out of URLs");
    assert_eq!(dev.poll(&auth_req_id).await.status, 200);

    let confirmed = html(&page(&dev, &location, None).await).to_owned();
    assert!(confirmed.contains("You approved this request"), "{confirmed}");
    assert!(
        confirmed.contains("Sign-in request “Sign in #TEST”")
            && confirmed.contains("Reference <span class=\"code\">TEST")
    );
    let bobs = html(&page(&dev, &location.replace("user=alice", "user=bob"), None).await).to_owned();
    assert!(!bobs.contains("You approved"), "a confirmation is shown to its holder only");
}

#[tokio::test]
async fn the_history_lists_the_holders_latest_decisions_with_what_became_of_each() {
    let dev = Dev::start().await;
    let mcp = dev.mcp_auth();
    let approved = Transfer::new("acc_alice_chk", "acc_bob_chk", "12.00").with_memo("<i>Lunch</i>");
    let denied = Transfer::new("acc_alice_chk", "acc_bob_chk", "99.00");
    let expiring = Transfer::new("acc_alice_sav", "acc_alice_chk", "5.00");
    let to_bob = Transfer::new("acc_bob_chk", "acc_alice_chk", "1.00");
    let short = dev.ask_transfer_approval(&mcp, "alice", &expiring, &[("requested_expiry", "1")]).await;
    assert_eq!(short.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let approve = dev.request_transfer_approval("alice", &approved).await;
    dev.approve(&approve).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let deny = dev.request_transfer_approval("alice", &denied).await;
    dev.deny(&deny).await;
    let bobs = dev.request_transfer_approval("bob", &to_bob).await;
    dev.approve(&bobs).await;

    let body = html(&page(&dev, "/device?user=alice", None).await).to_owned();
    let history = &body[body.find(r#"id="history""#).expect("a history section")..];
    let entry = |label: &str, what: &str| history.find(&format!("{label}</span> <span class=\"what\">{what}")).unwrap();
    let denied_at = entry("Denied", "99.00 USD from Everyday Checking");
    let approved_at = entry("Approved", "12.00 USD from Everyday Checking");
    let expired_at = entry("Expired", "5.00 USD from Rainy Day Savings");
    assert!(denied_at < approved_at && approved_at < expired_at, "latest first: {history}");
    assert!(history.contains(&format!("Reference {}", &denied.intent_id[4..8])));
    assert!(history.contains("&lt;i&gt;Lunch&lt;/i&gt;") && !history.contains("<i>Lunch"), "escaped");
    assert!(!history.contains("1.00 USD from Checking"), "bob's decisions are his own");
    assert!(history.contains(" UTC</time>"), "when");

    let fragment = html(&page(&dev, "/device/history?user=alice", None).await).to_owned();
    assert!(fragment.contains("99.00 USD") && !fragment.contains("<html"), "served alone for the refresh");
    let bobs_page = html(&page(&dev, "/device?user=bob", None).await).to_owned();
    assert!(bobs_page.contains("1.00 USD from Checking") && !bobs_page.contains("99.00 USD"), "{bobs_page}");
}

#[tokio::test]
async fn a_decision_that_comes_too_late_says_which_transfer_it_was_and_that_nothing_changed() {
    let dev = Dev::start().await;
    let transfer = Transfer::new("acc_alice_chk", "acc_bob_chk", "40.00");
    let reply = dev.ask_transfer_approval(&dev.mcp_auth(), "alice", &transfer, &[("requested_expiry", "1")]).await;
    let auth_req_id = reply.body["auth_req_id"].as_str().unwrap().to_owned();
    let token = csrf(html(&page(&dev, "/device?user=alice", None).await));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let no_redirects = bankguard::http_client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let late =
        send(no_redirects.post(format!("{}/device/decide", dev.issuer())).header("origin", dev.issuer()).form(&[
            ("user", "alice"),
            ("auth_req_id", auth_req_id.as_str()),
            ("decision", "approve"),
            ("csrf", token.as_str()),
        ]))
        .await;
    let body = html(&page(&dev, late.header("location"), None).await).to_owned();
    assert!(body.contains("This transfer was not decided: the request has expired"), "{body}");
    assert!(body.contains("40.00 USD to Checking (CHK-3307, Bob Okafor)") && body.contains("Nothing changed."));
    assert_eq!(dev.poll(&auth_req_id).await.body["error"], "expired_token");
}

#[tokio::test]
async fn the_device_answers_only_to_loopback_host_names() {
    let dev = Dev::start().await;
    for host in ["evil.example", "evil.example:4100", "192.168.1.5"] {
        assert_eq!(page(&dev, "/device?user=alice", Some(host)).await.status, 403, "{host}");
    }
    assert_eq!(page(&dev, "/device", Some("localhost:4100")).await.status, 200);
}

#[tokio::test]
async fn the_device_api_needs_the_device_token() {
    let dev = Dev::start().await;
    let anonymous = send(dev.http.get(format!("{}/device/api/pending", dev.issuer()))).await;
    assert_eq!(anonymous.status, 401);
    let wrong = send(dev.http.get(format!("{}/device/api/pending", dev.issuer())).bearer_auth("guess")).await;
    assert_eq!(wrong.status, 401);
    let token = std::fs::read_to_string(dev.data_path("device-token")).unwrap();
    let right = send(dev.http.get(format!("{}/device/api/pending", dev.issuer())).bearer_auth(token.trim())).await;
    assert_eq!(right.status, 200);
}
