//! The approval page's HTML: plain server-rendered markup, a little script that refreshes the list
//! and counts down, and every piece of request data escaped on the way out.

use serde_json::Value;

use super::device::PendingApproval;
use super::html::{self, escape};
use super::store::now_ms;
use crate::authorization_details::{PAYMENT_INITIATION, PaymentInitiation};
use crate::devstack::seed::{self, SeedUser};

/// How often the page asks for the current list, in milliseconds.
const REFRESH_MS: u32 = 2000;

pub fn find_user(subject: &str) -> Option<&'static SeedUser> {
    seed::USERS.iter().find(|user| user.subject == subject)
}

/// "25.00 USD from Everyday Checking (CHK-4821) to Checking (CHK-3307, Bob Okafor), memo “Dinner”".
pub fn transfer_summary(authorization_details: &str) -> Option<String> {
    let details: Vec<Value> = serde_json::from_str(authorization_details).ok()?;
    let payment = details.into_iter().find(|d| d.get("type").and_then(Value::as_str) == Some(PAYMENT_INITIATION))?;
    let payment: PaymentInitiation = serde_json::from_value(payment).ok()?;
    let from = describe_account(&payment.debtor_account.id, false);
    let to = describe_account(&payment.creditor_account.id, true);
    let mut summary =
        format!("{} {} from {from} to {to}", payment.instructed_amount.amount, payment.instructed_amount.currency);
    if let Some(memo) = payment.remittance_information_unstructured {
        summary.push_str(&format!(", memo “{memo}”"));
    }
    Some(summary)
}

fn describe_account(id: &str, with_owner: bool) -> String {
    for user in seed::USERS {
        if let Some(account) = user.accounts.iter().find(|account| account.id == id) {
            return match with_owner {
                true => format!("{} ({}, {})", account.name, account.masked_number, user.name),
                false => format!("{} ({})", account.name, account.masked_number),
            };
        }
    }
    format!("account {id}")
}

pub fn user_picker() -> String {
    let mut choices = String::new();
    for user in seed::USERS {
        choices.push_str(&format!(
            r#"<li><a class="user" href="/device?user={subject}">{name} <span class="muted">({subject}, {email})</span></a></li>"#,
            subject = escape(user.subject),
            name = escape(user.name),
            email = escape(user.email),
        ));
    }
    document(
        "Choose the account holder",
        &format!(
            r#"<h1>Whose phone is this?</h1>
<p>Pick the account holder whose approvals you want to see.</p>
<ul class="users">{choices}</ul>"#
        ),
    )
}

pub fn approvals(user: &SeedUser, pending: &[PendingApproval], csrf: &str, done: Option<&str>) -> String {
    let notice = match done {
        Some(outcome) => format!(r#"<p class="notice" role="status">Request {}.</p>"#, escape(outcome)),
        None => String::new(),
    };
    let list = pending_list(user, pending, csrf);
    let body = format!(
        r#"<h1>Approvals for {name}</h1>
<p><a href="/device">Switch account holder</a></p>
{notice}
<section aria-labelledby="pending-heading">
<h2 id="pending-heading">Pending requests</h2>
<div id="pending" aria-live="polite" data-source="/device/pending?user={subject}">{list}</div>
</section>
<script>{script}</script>"#,
        script = SCRIPT.replace("REFRESH_MS", &REFRESH_MS.to_string()),
        name = escape(user.name),
        subject = escape(user.subject),
    );
    document(&format!("Approvals for {}", user.name), &body)
}

/// The list of pending requests, newest first; also served alone for the page's refresh.
pub fn pending_list(user: &SeedUser, pending: &[PendingApproval], csrf: &str) -> String {
    if pending.is_empty() {
        return r#"<p class="empty">No requests are waiting for your approval.</p>"#.to_owned();
    }
    let now = now_ms() / 1000;
    let mut items = String::new();
    for (index, request) in pending.iter().enumerate() {
        let left = (request.expires_at - now).max(0);
        let what = request.summary.clone().unwrap_or_else(|| "Sign in".to_owned());
        items.push_str(&format!(
            r#"<li><article class="request" aria-labelledby="request-{index}">
<h3 id="request-{index}" class="binding">{binding}</h3>
<p class="summary">{what}</p>
<p class="meta">Requested by <strong>{client}</strong> · <span class="countdown" data-expires-at="{expires_at}">{minutes}:{seconds:02} left</span></p>
<form method="post" action="/device/decide" class="decision">
<input type="hidden" name="user" value="{user}">
<input type="hidden" name="auth_req_id" value="{id}">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit" name="decision" value="approve" class="approve">Approve</button>
<button type="submit" name="decision" value="deny" class="deny">Deny</button>
</form>
</article></li>"#,
            binding = escape(&request.binding_message),
            what = escape(&what),
            client = escape(&request.client_id),
            expires_at = request.expires_at,
            minutes = left / 60,
            seconds = left % 60,
            user = escape(user.subject),
            id = escape(&request.auth_req_id),
            csrf = escape(csrf),
        ));
    }
    format!(r#"<ol class="requests">{items}</ol>"#)
}

/// The device's pages: the shared shell, under the development-device banner.
fn document(title: &str, body: &str) -> String {
    html::document(&format!("{title} · bankguard dev device"), DEVICE_BANNER, body)
}

const DEVICE_BANNER: &str = "<strong>Development device.</strong> This page stands in for the account holder's phone. Anyone using this computer can approve here; never run it where real money is at stake.";

const SCRIPT: &str = r#"
(function () {
  var box = document.getElementById('pending');
  function tick() {
    var now = Date.now() / 1000;
    box.querySelectorAll('.countdown').forEach(function (el) {
      var left = Math.max(0, Math.round(Number(el.dataset.expiresAt) - now));
      el.textContent = left > 0 ? Math.floor(left / 60) + ':' + String(left % 60).padStart(2, '0') + ' left' : 'expired';
      if (left === 0) {
        el.closest('article').querySelectorAll('button').forEach(function (b) { b.disabled = true; });
      }
    });
  }
  function refresh() {
    if (box.contains(document.activeElement) && document.activeElement.tagName === 'BUTTON') { return; }
    fetch(box.dataset.source, { cache: 'no-store' }).then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null && html !== box.innerHTML) { box.innerHTML = html; tick(); } })
      .catch(function () {});
  }
  tick();
  setInterval(tick, 1000);
  setInterval(refresh, REFRESH_MS);
})();
"#;
