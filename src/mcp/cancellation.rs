//! Explicit cancellation (`notifications/cancelled`) of a `transfer_funds` call, made durable.
//!
//! MCP distinguishes a cancellation from a client that went away: only the former cancels the
//! transfer (a closed connection leaves it pending, and another server may finish it). rmcp fires
//! the same token for both, so the server watches the notifications itself:
//! - [`Calls`] maps each running call to the intent it follows, per connection;
//! - over stdio, [`CancelFirst`] sits under rmcp and stores the cancellation *before* rmcp even sees
//!   the notification, so a client that cancels and closes stdin at once cannot outrun the write;
//! - over HTTP the server's `on_cancelled` hook does the same (the process keeps running).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::model::{ClientNotification, JsonRpcMessage, JsonRpcNotification, RequestId};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;

use super::lifecycle::Runner;

/// The calls of one connection that follow an intent, and the ones the client cancelled.
#[derive(Clone, Default)]
pub struct Calls {
    inner: Arc<Mutex<CallsInner>>,
}

#[derive(Default)]
struct CallsInner {
    following: HashMap<RequestId, String>,
    cancelled: HashSet<RequestId>,
}

impl Calls {
    /// Records that `request` follows `intent_id`; true if the client already cancelled it.
    pub fn follows(&self, request: &RequestId, intent_id: &str) -> bool {
        let mut inner = self.inner.lock().expect("calls");
        inner.following.insert(request.clone(), intent_id.to_owned());
        inner.cancelled.contains(request)
    }

    /// The call is over.
    pub fn finished(&self, request: &RequestId) {
        let mut inner = self.inner.lock().expect("calls");
        inner.following.remove(request);
        inner.cancelled.remove(request);
    }

    /// Marks `request` cancelled; the intent it follows, if any yet.
    fn cancel(&self, request: &RequestId) -> Option<String> {
        let mut inner = self.inner.lock().expect("calls");
        inner.cancelled.insert(request.clone());
        inner.following.get(request).cloned()
    }

    /// Handles a client's cancellation of `request`: the intent it follows is cancelled and the
    /// cancellation stored before this returns.
    pub async fn cancel_durably(&self, request: &RequestId, runner: &Arc<Runner>) {
        if let Some(intent_id) = self.cancel(request)
            && let Err(error) = runner.cancel(&intent_id).await
        {
            tracing::error!(%error, intent = %intent_id, "could not record a cancellation");
        }
    }
}

/// A transport that stores cancellations before passing them on (used for stdio).
pub struct CancelFirst<T> {
    inner: T,
    calls: Calls,
    runner: Arc<Runner>,
}

impl<T> CancelFirst<T> {
    pub fn new(inner: T, calls: Calls, runner: Arc<Runner>) -> Self {
        Self { inner, calls, runner }
    }
}

impl<T: Transport<RoleServer>> Transport<RoleServer> for CancelFirst<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let message = self.inner.receive().await?;
        if let JsonRpcMessage::Notification(JsonRpcNotification {
            notification: ClientNotification::CancelledNotification(cancelled),
            ..
        }) = &message
            && let Some(request) = &cancelled.params.request_id
        {
            self.calls.cancel_durably(request, &self.runner).await;
        }
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
