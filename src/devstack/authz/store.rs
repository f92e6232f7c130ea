//! Backchannel authentication requests in SQLite: created by `/bc-authorize` (or found again, when a
//! client resends one), decided on the device, redeemed at `/oauth/token`, announced by ping. Every
//! state change is one write transaction, so a request is created once, decided once, redeemed once,
//! and its poll interval only ever grows.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sqlite::{BEGIN_WRITE, Database, DatabaseError};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/authz");

/// The authorization server's file inside the data directory.
pub const DATABASE_FILE: &str = "authz.sqlite";
/// CIBA Core §11: `slow_down` grows the interval by at least this much, for good.
pub const SLOW_DOWN_STEP_SECONDS: i64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Expired,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BackchannelRequest {
    pub auth_req_id: String,
    pub client_id: String,
    pub subject: String,
    pub scope: String,
    pub audience: Option<String>,
    pub binding_message: String,
    pub authorization_details: Option<String>,
    pub client_notification_token: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub interval_seconds: i64,
    pub last_polled_at_ms: Option<i64>,
    pub status: Status,
    pub decided_at: Option<i64>,
    pub redeemed: bool,
    pub notified: bool,
    /// The fingerprint that recognises a resend of this request (see [`RequestStore::create`]).
    pub retry_key: Option<String>,
}

/// What [`RequestStore::create`] did.
#[derive(Debug)]
pub enum Created {
    /// A new request, as given.
    New,
    /// A resend of this pending request, which is answered instead.
    Resent(Box<BackchannelRequest>),
}

/// What a token request for an `auth_req_id` gets.
#[derive(Debug)]
pub enum PollOutcome {
    /// Unknown, another client's, or already exchanged.
    InvalidGrant,
    Pending,
    SlowDown {
        interval_seconds: i64,
    },
    Denied,
    Expired,
    /// Approved: the request, now marked redeemed; tokens are issued from it.
    Approved(Box<BackchannelRequest>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no pending request {0} for this user")]
    NotFound(String),
    #[error("the request has already been decided")]
    AlreadyDecided,
    #[error("the request has expired")]
    Expired,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct RequestStore {
    db: Database,
    /// When each pending request was last polled, and its interval (grown by `slow_down`).
    /// Pacing is not worth a durable write per poll: after a restart it starts afresh.
    paces: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Pace>>>,
}

struct Pace {
    last_polled_at_ms: Option<i64>,
    interval_seconds: i64,
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl RequestStore {
    pub async fn open(data_dir: &Path) -> Result<Self, DatabaseError> {
        let db = Database::open(&data_dir.join(DATABASE_FILE), &MIGRATIONS).await?;
        Ok(Self { db, paces: Default::default() })
    }

    /// The database, for the server's other stores in the same file ([`super::grants`],
    /// [`super::registration`]).
    pub fn database(&self) -> Database {
        self.db.clone()
    }

    /// Stores `request`, unless it resends one not yet exchanged: the same client and user, the same
    /// [`retry_key`](BackchannelRequest::retry_key), not expired (at `now`, in seconds) and not
    /// redeemed. A decision already given applies to the resend (the client lost the answer, not the
    /// question). Then the earlier request is returned instead, with the resend's
    /// `client_notification_token` (the client listens on the one it sent last). One write
    /// transaction, so two identical requests at once still make one.
    pub async fn create(&self, request: &BackchannelRequest, now: i64) -> Result<Created, sqlx::Error> {
        let mut tx = self.db.writer.begin_with(BEGIN_WRITE).await?;
        if let Some(retry_key) = &request.retry_key {
            let earlier: Option<BackchannelRequest> = sqlx::query_as(
                "SELECT * FROM backchannel_requests
                 WHERE client_id = ? AND subject = ? AND retry_key = ?
                   AND status IN ('pending', 'approved', 'denied') AND redeemed = 0 AND expires_at > ?
                 ORDER BY created_at DESC, rowid DESC LIMIT 1",
            )
            .bind(&request.client_id)
            .bind(&request.subject)
            .bind(retry_key)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(earlier) = earlier {
                sqlx::query("UPDATE backchannel_requests SET client_notification_token = ? WHERE auth_req_id = ?")
                    .bind(&request.client_notification_token)
                    .bind(&earlier.auth_req_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                let token = request.client_notification_token.clone();
                // The interval as grown by slow_down, if it was polled.
                let paces = self.paces.lock().expect("poll paces");
                let interval_seconds =
                    paces.get(&earlier.auth_req_id).map_or(earlier.interval_seconds, |p| p.interval_seconds);
                return Ok(Created::Resent(Box::new(BackchannelRequest {
                    client_notification_token: token,
                    interval_seconds,
                    ..earlier
                })));
            }
        }
        sqlx::query(
            "INSERT INTO backchannel_requests (auth_req_id, client_id, subject, scope, audience, binding_message,
                 authorization_details, client_notification_token, created_at, expires_at, interval_seconds, status,
                 retry_key)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
        )
        .bind(&request.auth_req_id)
        .bind(&request.client_id)
        .bind(&request.subject)
        .bind(&request.scope)
        .bind(&request.audience)
        .bind(&request.binding_message)
        .bind(&request.authorization_details)
        .bind(&request.client_notification_token)
        .bind(request.created_at)
        .bind(request.expires_at)
        .bind(request.interval_seconds)
        .bind(&request.retry_key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Created::New)
    }

    /// A token request by `client_id` for `auth_req_id` at `now_ms`. Only what must survive a
    /// restart is written: an expiry noticed now, and the one exchange of an approval. A pending
    /// poll is answered from a read and the in-memory pace (`slow_down`), so waiting costs no
    /// write transaction however many requests are pending.
    pub async fn poll(&self, auth_req_id: &str, client_id: &str, now_ms: i64) -> Result<PollOutcome, sqlx::Error> {
        let row: Option<BackchannelRequest> =
            sqlx::query_as("SELECT * FROM backchannel_requests WHERE auth_req_id = ?")
                .bind(auth_req_id)
                .fetch_optional(&self.db.reader)
                .await?;
        let Some(request) = row.filter(|r| r.client_id == client_id && !r.redeemed) else {
            self.forget_pace(auth_req_id);
            return Ok(PollOutcome::InvalidGrant);
        };
        let expired = now_ms >= request.expires_at * 1000;
        if request.status != Status::Pending || expired {
            self.forget_pace(auth_req_id);
        }
        Ok(match request.status {
            Status::Denied => PollOutcome::Denied,
            Status::Expired => PollOutcome::Expired,
            Status::Approved | Status::Pending if expired => {
                sqlx::query(
                    "UPDATE backchannel_requests SET status = 'expired' WHERE auth_req_id = ? AND redeemed = 0",
                )
                .bind(auth_req_id)
                .execute(&self.db.writer)
                .await?;
                PollOutcome::Expired
            }
            Status::Approved => {
                // Exchanged once: of two polls racing here, one wins and the other is invalid_grant.
                let redeemed = sqlx::query(
                    "UPDATE backchannel_requests SET redeemed = 1
                     WHERE auth_req_id = ? AND status = 'approved' AND redeemed = 0",
                )
                .bind(auth_req_id)
                .execute(&self.db.writer)
                .await?;
                if redeemed.rows_affected() == 1 {
                    PollOutcome::Approved(Box::new(BackchannelRequest { redeemed: true, ..request }))
                } else {
                    PollOutcome::InvalidGrant
                }
            }
            Status::Pending => {
                let mut paces = self.paces.lock().expect("poll paces");
                let pace = paces
                    .entry(auth_req_id.to_owned())
                    .or_insert(Pace { last_polled_at_ms: None, interval_seconds: request.interval_seconds });
                let too_soon = pace.last_polled_at_ms.is_some_and(|last| now_ms - last < pace.interval_seconds * 1000);
                pace.last_polled_at_ms = Some(now_ms);
                if too_soon {
                    pace.interval_seconds += SLOW_DOWN_STEP_SECONDS;
                    PollOutcome::SlowDown { interval_seconds: pace.interval_seconds }
                } else {
                    PollOutcome::Pending
                }
            }
        })
    }

    fn forget_pace(&self, auth_req_id: &str) {
        self.paces.lock().expect("poll paces").remove(auth_req_id);
    }

    /// The account holder's decision on one of their pending requests.
    pub async fn decide(
        &self,
        auth_req_id: &str,
        subject: &str,
        decision: Decision,
        now: i64,
    ) -> Result<BackchannelRequest, DecideError> {
        let mut tx = self.db.writer.begin_with(BEGIN_WRITE).await?;
        let row: Option<BackchannelRequest> =
            sqlx::query_as("SELECT * FROM backchannel_requests WHERE auth_req_id = ? AND subject = ?")
                .bind(auth_req_id)
                .bind(subject)
                .fetch_optional(&mut *tx)
                .await?;
        let request = row.ok_or_else(|| DecideError::NotFound(auth_req_id.to_owned()))?;
        match request.status {
            Status::Pending if now < request.expires_at => {}
            // Expired undecided, whether or not the expiry loop has marked it yet.
            Status::Pending => return Err(DecideError::Expired),
            Status::Expired if request.decided_at.is_none() => return Err(DecideError::Expired),
            Status::Approved | Status::Denied | Status::Expired => return Err(DecideError::AlreadyDecided),
        }
        let status = match decision {
            Decision::Approve => Status::Approved,
            Decision::Deny => Status::Denied,
        };
        sqlx::query("UPDATE backchannel_requests SET status = ?, decided_at = ? WHERE auth_req_id = ?")
            .bind(status)
            .bind(now)
            .bind(auth_req_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(BackchannelRequest { status, decided_at: Some(now), ..request })
    }

    /// The user's undecided, unexpired requests, newest first (`None`: every user's).
    pub async fn pending(&self, subject: Option<&str>, now: i64) -> Result<Vec<BackchannelRequest>, sqlx::Error> {
        sqlx::query_as(
            "SELECT * FROM backchannel_requests
             WHERE status = 'pending' AND expires_at > ?1 AND (?2 IS NULL OR subject = ?2)
             ORDER BY created_at DESC, rowid DESC",
        )
        .bind(now)
        .bind(subject)
        .fetch_all(&self.db.reader)
        .await
    }

    /// One of the user's requests, whatever its state.
    pub async fn find(&self, auth_req_id: &str, subject: &str) -> Result<Option<BackchannelRequest>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM backchannel_requests WHERE auth_req_id = ? AND subject = ?")
            .bind(auth_req_id)
            .bind(subject)
            .fetch_optional(&self.db.reader)
            .await
    }

    /// The user's `limit` most recently settled requests at `now` (decided, or expired even if not yet
    /// marked so), the latest first: when each was decided, or when it expired undecided.
    pub async fn recently_settled(
        &self,
        subject: &str,
        now: i64,
        limit: u32,
    ) -> Result<Vec<BackchannelRequest>, sqlx::Error> {
        sqlx::query_as(
            "SELECT * FROM backchannel_requests
             WHERE subject = ?1 AND (status <> 'pending' OR expires_at <= ?2)
             ORDER BY COALESCE(decided_at, expires_at) DESC, rowid DESC LIMIT ?3",
        )
        .bind(subject)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.db.reader)
        .await
    }

    /// Marks pending requests past their expiry as expired.
    pub async fn expire_due(&self, now: i64) -> Result<u64, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE backchannel_requests SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?",
        )
        .bind(now)
        .execute(&self.db.writer)
        .await?;
        Ok(result.rows_affected())
    }

    /// Claims the ping requests whose outcome is known and not yet announced; each is returned once.
    pub async fn claim_unannounced(&self) -> Result<Vec<BackchannelRequest>, sqlx::Error> {
        sqlx::query_as(
            "UPDATE backchannel_requests SET notified = 1
             WHERE notified = 0 AND status <> 'pending' AND client_notification_token IS NOT NULL
             RETURNING *",
        )
        .fetch_all(&self.db.writer)
        .await
    }
}
