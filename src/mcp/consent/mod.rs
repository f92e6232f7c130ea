//! Proof of consent: what shows, to someone who trusts neither bankguard's database nor its
//! operator, that the account holder approved exactly the transfer that was executed.
//!
//! Three signatures, by three parties, over the same terms:
//! - the **provider's**: the access token the holder's approval produced is a JWT the provider
//!   signed, naming the holder (`sub`) and, in `authorization_details`, the exact payment (amount,
//!   currency, both accounts, memo and the intent id). [`approval`] verifies it when it arrives,
//!   with the provider's key set as fetched then, and keeps both ([`approval::Witnessed`]);
//! - the **server's**: when the bank has executed the transfer, the server signs a receipt over the
//!   intent id, the terms, the approving token (issuer, `jti`, SHA-256) and the bank's transfer id
//!   ([`receipt`]), in the same transaction that records the completion and its audit entry, whose
//!   hash the receipt also carries;
//! - the **audit chain's**: the intent's entries, each hash-checked ([`crate::mcp::lifecycle::audit`]).
//!
//! [`evidence`] writes these into a directory anyone can check offline (`bankguard evidence` and
//! `bankguard evidence verify`). What the pack cannot prove by itself is whose keys it holds: the
//! verifier names the provider's and the server's key ids so that a reviewer can compare them with
//! the provider's published `jwks_uri` and the server's `/.well-known/bankguard-keys.json`.

pub mod approval;
pub mod evidence;
pub mod receipt;
