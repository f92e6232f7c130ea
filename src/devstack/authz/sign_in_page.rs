//! The sign-in pages' HTML: pick a demo user, then consent, and the page for a request that cannot
//! go back to its client. Plain server-rendered forms, no script; every piece of request data (the
//! client's self-chosen name first of all) is escaped on the way out.
//!
//! The consent page names the client by its name and always by its id too (a name is the client's
//! own claim), says in plain words what it will be allowed, for which resource, and where the person
//! goes back to.

use super::authorize::AuthorizationRequest;
use super::html::{self, escape};
use super::sign_in::{CONSENT_PATH, SIGN_IN_PATH};
use crate::devstack::seed::{self, SeedUser};
use crate::scopes::MCP_TOOLS;

const SIGN_IN_BANNER: &str = "<strong>Development sign-in.</strong> There are no passwords here: anyone using this computer can sign in as any demo user. Never run it where real money is at stake.";

fn document(title: &str, body: &str) -> String {
    html::document(&format!("{title} · bankguard dev sign-in"), SIGN_IN_BANNER, body)
}

/// Step one: who is signing in.
pub fn pick_user(request: &AuthorizationRequest, sign_in: &str, csrf: &str) -> String {
    let mut choices = String::new();
    for user in seed::USERS {
        choices.push_str(&format!(
            r#"<li><button type="submit" class="user" name="user" value="{subject}">{name} <span class="muted">({subject}, {email})</span></button></li>"#,
            subject = escape(user.subject),
            name = escape(user.name),
            email = escape(user.email),
        ));
    }
    let body = format!(
        r#"<h1>Sign in to bankguard</h1>
<p><strong class="client-name">{client}</strong> asks you to sign in.</p>
<form method="post" action="{SIGN_IN_PATH}" class="sign-in">
<input type="hidden" name="sign_in" value="{sign_in}">
<input type="hidden" name="csrf" value="{csrf}">
<p>Who are you?</p>
<ul class="users">{choices}</ul>
</form>"#,
        client = escape(request.client.display_name()),
        sign_in = escape(sign_in),
        csrf = escape(csrf),
    );
    document("Sign in", &body)
}

/// Step two: what the client will be allowed, and Allow or Deny.
pub fn consent(request: &AuthorizationRequest, user: &SeedUser, sign_in: &str, csrf: &str) -> String {
    let client = &request.client;
    let identity = match &client.client_name {
        Some(_) => {
            format!(r#"<p class="meta">Client id <code class="client-id">{}</code></p>"#, escape(&client.client_id))
        }
        None => String::new(),
    };
    let grants: String = request
        .scope
        .split(' ')
        .map(|scope| format!(r#"<li><code>{}</code>: {}</li>"#, escape(scope), escape(describe_scope(scope))))
        .collect();
    let body = format!(
        r#"<h1>Allow {client_name}?</h1>
<article class="consent" aria-labelledby="consent-heading">
<h2 id="consent-heading"><strong class="client-name">{client_name}</strong> wants to act as <strong class="user-name">{user_name}</strong> ({subject})</h2>
{identity}
<p>It will be allowed to:</p>
<ul class="grants">{grants}</ul>
<p class="meta">At <code class="resource">{resource}</code>. Afterwards you go back to <code class="redirect">{redirect}</code>.</p>
<form method="post" action="{CONSENT_PATH}" class="decision">
<input type="hidden" name="sign_in" value="{sign_in}">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit" name="decision" value="approve" class="approve">Allow</button>
<button type="submit" name="decision" value="deny" class="deny">Deny</button>
</form>
</article>"#,
        client_name = escape(client.display_name()),
        user_name = escape(user.name),
        subject = escape(user.subject),
        resource = escape(&request.resource),
        redirect = escape(&request.callback.redirect_uri),
        sign_in = escape(sign_in),
        csrf = escape(csrf),
    );
    document(&format!("Allow {}?", client.display_name()), &body)
}

/// A request that cannot go back to its client, or a form that cannot continue.
pub fn problem(title: &str, message: &str) -> String {
    let body = format!(
        r#"<h1>{title}</h1>
<p class="problem" role="alert">{message}</p>
<p>You can close this page.</p>"#,
        title = escape(title),
        message = escape(message),
    );
    document(title, &body)
}

/// A scope in plain words.
fn describe_scope(scope: &str) -> &'static str {
    match scope {
        MCP_TOOLS => {
            "use bankguard's tools as you: see your accounts and balances, and ask to move money (every transfer still waits for your approval on your device)"
        }
        _ => "a permission this server does not describe",
    }
}
