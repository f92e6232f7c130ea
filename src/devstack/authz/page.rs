//! The approval page's HTML: plain server-rendered markup, a little script that refreshes the lists
//! and counts down, and every piece of request data escaped on the way out.
//!
//! A holder's page reads top to bottom as the phone would: what was just decided (the transfer and
//! its outcome), what waits (each request under its reference code in large type, the code the AI
//! client's messages repeat), and the last few decisions.

use std::time::Duration;

use super::device::PendingApproval;
use super::html::{self, escape};
use super::request_view::{Confirmation, HistoryEntry, Outcome};
use super::store::now_ms;
use crate::clock::{Millis, TimeLeft};
use crate::devstack::seed::{self, SeedUser};

/// How often the page asks for the current lists, in milliseconds.
const REFRESH_MS: u32 = 2000;

pub fn find_user(subject: &str) -> Option<&'static SeedUser> {
    seed::USERS.iter().find(|user| user.subject == subject)
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

/// What one holder's page shows.
pub struct HolderPage<'a> {
    pub user: &'a SeedUser,
    pub pending: &'a [PendingApproval],
    pub history: &'a [HistoryEntry],
    pub csrf: &'a str,
}

pub fn approvals(page: &HolderPage<'_>, confirmation: Option<&Confirmation>) -> String {
    let subject = escape(page.user.subject);
    let body = format!(
        r#"<h1>Approvals for {name}</h1>
<p><a href="/device">Switch account holder</a></p>
{confirmation}
<section aria-labelledby="pending-heading">
<h2 id="pending-heading">Pending requests</h2>
<div id="pending" aria-live="polite" data-source="/device/pending?user={subject}">{pending}</div>
</section>
<section aria-labelledby="history-heading">
<h2 id="history-heading">Recent decisions</h2>
<div id="history" data-source="/device/history?user={subject}">{history}</div>
</section>
<script>{script}</script>"#,
        name = escape(page.user.name),
        confirmation = confirmation.map(confirmation_notice).unwrap_or_default(),
        pending = pending_list(page.user, page.pending, page.csrf),
        history = history_list(page.history),
        script = SCRIPT.replace("REFRESH_MS", &REFRESH_MS.to_string()),
    );
    document(&format!("Approvals for {}", page.user.name), &body)
}

/// "You approved this transfer · Reference K7Q2 · 25.00 USD to Checking (CHK-3307, Bob Okafor) ·
/// bankguard MCP server may now make this transfer, once."
fn confirmation_notice(confirmation: &Confirmation) -> String {
    let Some(request) = &confirmation.request else {
        let Outcome::NotDecided(reason) = &confirmation.outcome else { return String::new() };
        return format!(
            r#"<section class="notice confirmation" role="status"><h2>Nothing was decided</h2><p>{}.</p></section>"#,
            escape(reason)
        );
    };
    let kind = if request.is_transfer { "transfer" } else { "request" };
    let client = &request.client_name;
    let (class, headline, consequence) = match &confirmation.outcome {
        Outcome::Approved if request.is_transfer => {
            ("approved", "You approved this transfer".to_owned(), format!("{client} may now make this transfer, once."))
        }
        Outcome::Approved => {
            ("approved", "You approved this request".to_owned(), format!("{client} may now go ahead, once."))
        }
        Outcome::Denied if request.is_transfer => {
            ("denied", "You denied this transfer".to_owned(), format!("No money moves: {client} is told you said no."))
        }
        Outcome::Denied => ("denied", "You denied this request".to_owned(), format!("{client} is told you said no.")),
        Outcome::NotDecided(reason) => {
            ("problem", format!("This {kind} was not decided: {reason}"), "Nothing changed.".to_owned())
        }
    };
    format!(
        r#"<section class="notice confirmation {class}" role="status" aria-labelledby="confirmation-heading">
<h2 id="confirmation-heading">{headline}</h2>
{reference}<p class="what">{what}</p>
<p>{consequence}</p>
</section>"#,
        headline = escape(&headline),
        reference = request.reference.as_deref().map(reference_label).unwrap_or_default(),
        what = escape(&request.what),
        consequence = escape(&consequence),
    )
}

/// "Reference K7Q2", in large type.
fn reference_label(code: &str) -> String {
    format!(r#"<p class="reference">Reference <span class="code">{}</span></p>"#, escape(code))
}

/// The list of pending requests, newest first; also served alone for the page's refresh.
pub fn pending_list(user: &SeedUser, pending: &[PendingApproval], csrf: &str) -> String {
    if pending.is_empty() {
        return r#"<p class="empty">No requests are waiting for your approval.</p>"#.to_owned();
    }
    let now = now_ms() / 1000;
    let mut items = String::new();
    for (index, request) in pending.iter().enumerate() {
        let left = Duration::from_secs((request.expires_at - now).max(0) as u64);
        let what = request.summary.clone().unwrap_or_else(|| "Sign in".to_owned());
        let heading = match &request.reference {
            Some(code) => format!(
                r#"<h3 id="request-{index}" class="reference">Reference <span class="code">{}</span></h3>"#,
                escape(code)
            ),
            None => format!(r#"<h3 id="request-{index}" class="binding">{}</h3>"#, escape(&request.binding_message)),
        };
        items.push_str(&format!(
            r#"<li><article class="request" aria-labelledby="request-{index}">
{heading}
<p class="summary">{what}</p>
<p class="message">Message: <code class="binding">{binding}</code></p>
<p class="meta">Requested by <strong class="client">{client}</strong> · <span class="countdown" data-expires-at="{expires_at}">{left} left</span></p>
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
            client = escape(&request.client_name),
            expires_at = request.expires_at,
            left = TimeLeft(left),
            user = escape(user.subject),
            id = escape(&request.auth_req_id),
            csrf = escape(csrf),
        ));
    }
    format!(r#"<ol class="requests">{items}</ol>"#)
}

/// The holder's last decisions, latest first; also served alone for the page's refresh.
pub fn history_list(history: &[HistoryEntry]) -> String {
    if history.is_empty() {
        return r#"<p class="empty">No decisions yet.</p>"#.to_owned();
    }
    let mut items = String::new();
    for entry in history {
        let at = Millis(entry.at.saturating_mul(1000)).rfc3339();
        let reference = match &entry.reference {
            Some(code) => format!(r#" <span class="muted">· Reference {}</span>"#, escape(code)),
            None => String::new(),
        };
        items.push_str(&format!(
            r#"<li class="decision-{class}"><time class="muted" datetime="{at}">{shown}</time>
<span class="badge {class}">{label}</span> <span class="what">{what}</span>{reference}</li>"#,
            class = entry.settled.class(),
            label = entry.settled.label(),
            what = escape(&entry.what),
            shown = escape(&at.replace('T', " ").replace('Z', " UTC")),
        ));
    }
    format!(r#"<ol class="history">{items}</ol>"#)
}

/// The device's pages: the shared shell, under the development-device banner.
fn document(title: &str, body: &str) -> String {
    html::document(&format!("{title} · bankguard dev device"), DEVICE_BANNER, body)
}

const DEVICE_BANNER: &str = "<strong>Development device.</strong> This page stands in for the account holder's phone. Anyone using this computer can approve here; never run it where real money is at stake.";

/// Counts down (in the words of [`TimeLeft`]) and swaps in each `data-source` list as it changes,
/// except while a button in it has the focus (a click about to land).
const SCRIPT: &str = r#"
(function () {
  var pending = document.getElementById('pending');
  var lists = document.querySelectorAll('[data-source]');
  function pad(n) { return String(n).padStart(2, '0'); }
  function timeLeft(s) {
    if (s < 3600) { return Math.floor(s / 60) + ':' + pad(s % 60); }
    if (s < 86400) { return Math.floor(s / 3600) + ' h ' + pad(Math.floor(s % 3600 / 60)) + ' min'; }
    return Math.floor(s / 86400) + ' d ' + pad(Math.floor(s % 86400 / 3600)) + ' h';
  }
  function tick() {
    var now = Date.now() / 1000;
    pending.querySelectorAll('.countdown').forEach(function (el) {
      var left = Math.max(0, Math.floor(Number(el.dataset.expiresAt) - now));
      el.textContent = left > 0 ? timeLeft(left) + ' left' : 'expired';
      if (left === 0) {
        el.closest('article').querySelectorAll('button').forEach(function (b) { b.disabled = true; });
      }
    });
  }
  function refresh(box) {
    if (box.contains(document.activeElement) && document.activeElement.tagName === 'BUTTON') { return; }
    fetch(box.dataset.source, { cache: 'no-store' }).then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null && html !== box.innerHTML) { box.innerHTML = html; tick(); } })
      .catch(function () {});
  }
  tick();
  setInterval(tick, 1000);
  setInterval(function () { lists.forEach(refresh); }, REFRESH_MS);
})();
"#;
