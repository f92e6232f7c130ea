//! What a sign-in leaves behind, in SQLite: authorization codes, and refresh tokens in families.
//!
//! A code is single-use and short-lived, bound to everything the sign-in decided (client, redirect
//! URI, PKCE challenge, resource, scope, user). Exchanging it starts a **family**: the refresh tokens
//! rotated one from another (RFC 9700 §4.14.2). Each refresh token works once; its successor is
//! issued in the same transaction that retires it. A retired token or an exchanged code that comes
//! back means someone else holds a copy, so the whole family is revoked (RFC 6749 §4.1.2, RFC 9700
//! §4.14.2); the access tokens already issued are short-lived JWTs and simply run out.
//!
//! Codes and refresh tokens are stored as SHA-256 hashes only, and never logged.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::secrets;
use crate::sqlite::{BEGIN_WRITE, Database};

/// What an authorization code was issued for; the token request must match it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CodeBinding {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
    pub subject: String,
}

#[derive(Debug, sqlx::FromRow)]
pub struct StoredCode {
    #[sqlx(flatten)]
    pub binding: CodeBinding,
    pub expires_at: i64,
    /// Set once exchanged: the family of the tokens issued for it.
    pub family_id: Option<String>,
}

/// One sign-in's grant, shared by every refresh token rotated from its code.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Family {
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    pub scope: String,
    pub resource: String,
}

#[derive(Debug, sqlx::FromRow)]
pub struct StoredRefreshToken {
    #[sqlx(flatten)]
    pub family: Family,
    pub expires_at: i64,
    /// Set once exchanged for its successor.
    pub rotated_at: Option<i64>,
    /// Set once its family was revoked.
    pub revoked_at: Option<i64>,
}

pub struct GrantStore {
    db: Database,
    code_lifetime_seconds: i64,
    refresh_lifetime_seconds: i64,
}

/// A code or refresh token as stored: its SHA-256, base64url.
fn hash(credential: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(credential.as_bytes()))
}

impl GrantStore {
    pub fn new(db: Database, code_lifetime_seconds: i64, refresh_lifetime_seconds: i64) -> Self {
        Self { db, code_lifetime_seconds, refresh_lifetime_seconds }
    }

    /// A new code for `binding`, valid from `now` (seconds) for the code lifetime.
    pub async fn issue_code(&self, binding: &CodeBinding, now: i64) -> Result<String, sqlx::Error> {
        let code = secrets::random_token(32);
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, client_id, redirect_uri, code_challenge, resource, scope,
                 subject, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(hash(&code))
        .bind(&binding.client_id)
        .bind(&binding.redirect_uri)
        .bind(&binding.code_challenge)
        .bind(&binding.resource)
        .bind(&binding.scope)
        .bind(&binding.subject)
        .bind(now)
        .bind(now + self.code_lifetime_seconds)
        .execute(&self.db.writer)
        .await?;
        Ok(code)
    }

    pub async fn find_code(&self, code: &str) -> Result<Option<StoredCode>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM authorization_codes WHERE code_hash = ?")
            .bind(hash(code))
            .fetch_optional(&self.db.reader)
            .await
    }

    /// Exchanges `code` once: marks it used, starts its family and issues the family's first
    /// refresh token, in one transaction. `None`: another request exchanged it first.
    pub async fn exchange_code(
        &self,
        code: &str,
        binding: &CodeBinding,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let family_id = secrets::random_token(16);
        let mut tx = self.db.writer.begin_with(BEGIN_WRITE).await?;
        sqlx::query(
            "INSERT INTO grant_families (family_id, client_id, subject, scope, resource, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&family_id)
        .bind(&binding.client_id)
        .bind(&binding.subject)
        .bind(&binding.scope)
        .bind(&binding.resource)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let claimed =
            sqlx::query("UPDATE authorization_codes SET family_id = ? WHERE code_hash = ? AND family_id IS NULL")
                .bind(&family_id)
                .bind(hash(code))
                .execute(&mut *tx)
                .await?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        let refresh_token = self.insert_refresh_token(&mut tx, &family_id, now).await?;
        tx.commit().await?;
        Ok(Some(refresh_token))
    }

    pub async fn find_refresh_token(&self, token: &str) -> Result<Option<StoredRefreshToken>, sqlx::Error> {
        sqlx::query_as(
            "SELECT f.family_id, f.client_id, f.subject, f.scope, f.resource, f.revoked_at, t.expires_at, t.rotated_at
             FROM refresh_tokens t JOIN grant_families f ON f.family_id = t.family_id
             WHERE t.token_hash = ?",
        )
        .bind(hash(token))
        .fetch_optional(&self.db.reader)
        .await
    }

    /// Retires `token` and issues its successor in the same family, in one transaction. `None`:
    /// it was retired or its family revoked meanwhile.
    pub async fn rotate_refresh_token(&self, token: &str, now: i64) -> Result<Option<String>, sqlx::Error> {
        let mut tx = self.db.writer.begin_with(BEGIN_WRITE).await?;
        let retired: Option<(String,)> = sqlx::query_as(
            "UPDATE refresh_tokens SET rotated_at = ?
             WHERE token_hash = ? AND rotated_at IS NULL AND expires_at > ?
               AND family_id IN (SELECT family_id FROM grant_families WHERE revoked_at IS NULL)
             RETURNING family_id",
        )
        .bind(now)
        .bind(hash(token))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((family_id,)) = retired else { return Ok(None) };
        let successor = self.insert_refresh_token(&mut tx, &family_id, now).await?;
        tx.commit().await?;
        Ok(Some(successor))
    }

    /// Revokes every refresh token of the family.
    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE grant_families SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&self.db.writer)
            .await?;
        Ok(())
    }

    async fn insert_refresh_token(
        &self,
        tx: &mut sqlx::SqliteConnection,
        family_id: &str,
        now: i64,
    ) -> Result<String, sqlx::Error> {
        let token = secrets::random_token(32);
        sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(hash(&token))
            .bind(family_id)
            .bind(now)
            .bind(now + self.refresh_lifetime_seconds)
            .execute(tx)
            .await?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devstack::authz::store::RequestStore;

    async fn store() -> (tempfile::TempDir, GrantStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = RequestStore::open(dir.path()).await.unwrap().database();
        (dir, GrantStore::new(db, 60, 3600))
    }

    fn binding() -> CodeBinding {
        CodeBinding {
            client_id: "client".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            resource: "http://127.0.0.1:4102/mcp".into(),
            scope: "mcp:tools".into(),
            subject: "alice".into(),
        }
    }

    #[tokio::test]
    async fn a_code_is_exchanged_once_and_only_its_hash_is_stored() {
        let (_dir, grants) = store().await;
        let code = grants.issue_code(&binding(), 1000).await.unwrap();
        let stored = grants.find_code(&code).await.unwrap().unwrap();
        assert_eq!((stored.binding, stored.expires_at, stored.family_id), (binding(), 1060, None));
        let stored_codes: Vec<(String,)> =
            sqlx::query_as("SELECT code_hash FROM authorization_codes").fetch_all(&grants.db.reader).await.unwrap();
        assert_eq!(stored_codes, [(hash(&code),)]);

        assert!(grants.exchange_code(&code, &binding(), 1001).await.unwrap().is_some());
        assert!(grants.exchange_code(&code, &binding(), 1002).await.unwrap().is_none());
        assert!(grants.find_code(&code).await.unwrap().unwrap().family_id.is_some());
    }

    #[tokio::test]
    async fn a_refresh_token_rotates_once_and_a_revoked_family_rotates_no_more() {
        let (_dir, grants) = store().await;
        let code = grants.issue_code(&binding(), 1000).await.unwrap();
        let first = grants.exchange_code(&code, &binding(), 1001).await.unwrap().unwrap();
        let second = grants.rotate_refresh_token(&first, 1002).await.unwrap().unwrap();
        assert!(grants.rotate_refresh_token(&first, 1003).await.unwrap().is_none(), "used once");
        let stored = grants.find_refresh_token(&first).await.unwrap().unwrap();
        assert_eq!((stored.rotated_at, stored.family.subject.as_str()), (Some(1002), "alice"));

        grants.revoke_family(&stored.family.family_id, 1004).await.unwrap();
        assert!(grants.rotate_refresh_token(&second, 1005).await.unwrap().is_none(), "revoked with its family");
        assert!(grants.rotate_refresh_token("never-issued", 1005).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_expired_refresh_token_does_not_rotate() {
        let (_dir, grants) = store().await;
        let code = grants.issue_code(&binding(), 1000).await.unwrap();
        let token = grants.exchange_code(&code, &binding(), 1000).await.unwrap().unwrap();
        assert!(grants.rotate_refresh_token(&token, 1000 + 3600).await.unwrap().is_none());
    }
}
