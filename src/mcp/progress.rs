//! MCP progress notifications while the account holder decides: one as soon as the request is
//! handed to the runner, then one per tick, `progress` strictly increasing (seconds of the
//! approval's lifetime used), `total` that lifetime, and a message with the reference code and the
//! time left.
//!
//! The message names the reference in the words the approval device uses ("Reference K7Q2"), so the
//! person can match the chat with the request on their phone; the time left reads in minutes, hours
//! or days ([`TimeLeft`]), since an approval may last up to three days.

use std::time::Duration;

use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};

use super::lifecycle::{IntentState, StoredIntent};
use crate::clock::{Clock, Millis, TimeLeft};

pub struct ProgressReporter {
    peer: Peer<RoleServer>,
    /// `None` when the request carried no `progressToken`: then nothing is sent.
    token: Option<ProgressToken>,
    lifetime: Duration,
    clock: Clock,
    expires_at: Millis,
    reference: String,
    last: f64,
}

impl ProgressReporter {
    pub fn new(
        peer: Peer<RoleServer>,
        token: Option<ProgressToken>,
        lifetime: Duration,
        clock: Clock,
        intent: &StoredIntent,
    ) -> Self {
        let expires_at = match &intent.state {
            IntentState::Pending { expires_at, .. } => *expires_at,
            _ => intent.created_at.plus(lifetime),
        };
        Self { peer, token, lifetime, clock, expires_at, reference: intent.terms.reference.clone(), last: -1.0 }
    }

    /// "Approve the transfer on your device — Reference K7Q2".
    pub async fn request_sent(&mut self) {
        let message = format!("Approve the transfer on your device — Reference {}", self.reference);
        self.send(message).await;
    }

    /// "Waiting for approval on your device — Reference K7Q2, 4:40 left" (or "2 h 05 min left",
    /// "2 d 03 h left").
    pub async fn still_waiting(&mut self) {
        let message = format!(
            "Waiting for approval on your device — Reference {}, {} left",
            self.reference,
            TimeLeft(self.left())
        );
        self.send(message).await;
    }

    fn left(&self) -> Duration {
        self.clock.now().until(self.expires_at)
    }

    async fn send(&mut self, message: String) {
        let Some(token) = &self.token else { return };
        let used = self.lifetime.saturating_sub(self.left()).as_secs_f64();
        // Strictly increasing even if two ticks land in the same instant.
        let progress = used.max(self.last + 0.001);
        self.last = progress;
        let param = ProgressNotificationParam::new(token.clone(), progress)
            .with_total(self.lifetime.as_secs_f64())
            .with_message(message);
        if let Err(error) = self.peer.notify_progress(param).await {
            tracing::debug!(%error, "a progress notification could not be sent");
        }
    }
}
