//! Following an intent from a tool call: wait until it is final, the call's bound passes or the
//! call is cancelled, sending progress notifications meanwhile. Following never changes the intent.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::lifecycle::{IntentStore, StoredIntent};
use super::progress::ProgressReporter;
use super::tools::ToolFailure;

/// How often a follower re-reads the store, for intents another process drives.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// How a follow ended.
pub enum Followed {
    /// The intent as stored when the follow ended: final, or still open when time ran out.
    Settled(Box<StoredIntent>),
    /// The following call was cancelled (or its client went away).
    Stopped,
}

/// Follows `intent` until it is final, `bound` passes or `stop` fires, reporting progress.
pub async fn follow(
    store: &IntentStore,
    intent: StoredIntent,
    bound: Duration,
    progress_every: Duration,
    stop: &CancellationToken,
    mut progress: Option<&mut ProgressReporter>,
) -> Result<Followed, ToolFailure> {
    if intent.state.is_final() {
        return Ok(Followed::Settled(Box::new(intent)));
    }
    let deadline = tokio::time::Instant::now() + bound;
    let mut changes = store.watch(intent.id(), intent.status());
    let mut tick = tokio::time::interval(progress_every);
    tick.tick().await;
    // Its first tick is at once: the store is read again right after subscribing.
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(Followed::Stopped),
            changed = changes.changed() => {
                if changed.is_err() || changes.borrow().is_final() {
                    break;
                }
            }
            () = tokio::time::sleep_until(deadline) => break,
            _ = tick.tick() => {
                if let Some(progress) = progress.as_deref_mut() {
                    progress.still_waiting().await;
                }
            }
            _ = recheck.tick() => {
                let current = store.get(&intent.owner, intent.id()).await?;
                if current.as_ref().is_some_and(|current| current.state.is_final()) {
                    break;
                }
            }
        }
    }
    let latest = store.get(&intent.owner, intent.id()).await?.unwrap_or(intent);
    Ok(Followed::Settled(Box::new(latest)))
}
