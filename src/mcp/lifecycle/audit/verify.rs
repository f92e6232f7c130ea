//! What `bankguard audit verify` checks: every entry against its hash and its predecessor, every
//! signed head against the audit key, and every head against the entries it covers.
//!
//! The answer is a [`ChainReport`] or the [`Finding`] with the lowest sequence number: the first
//! bad entry, and what is wrong with it.

use std::collections::HashMap;

use super::{AuditRow, GENESIS_HASH, HEAD_TYPE, HeadClaims, SignedHead};
use crate::clock::Millis;
use crate::mcp::server_key::TrustedKeys;

/// A chain that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub entries: i64,
    pub signed_heads: usize,
    /// The last signed head: its entry's `seq` and when it was signed.
    pub last_signed: Option<(i64, Millis)>,
}

impl std::fmt::Display for ChainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the audit log verifies: {} entries, hash chain intact, {} signed heads",
            self.entries, self.signed_heads
        )?;
        match self.last_signed {
            Some((seq, at)) => {
                write!(f, ", the last at entry {seq} ({}), {} entries since", at.rfc3339(), self.entries - seq)
            }
            None => write!(f, ", none yet"),
        }
    }
}

/// The first bad entry and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit entry {seq}: {problem}")]
pub struct Finding {
    pub seq: i64,
    pub problem: String,
}

/// Checks `rows` (in `seq` order) and `heads` (in `seq` order), each head against `trusted`.
pub fn verify(rows: &[AuditRow], heads: &[SignedHead], trusted: &TrustedKeys) -> Result<ChainReport, Finding> {
    let mut findings = Vec::new();
    let mut hashes: HashMap<i64, &str> = HashMap::new();
    let mut expected = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    for row in rows {
        if row.seq != expected {
            findings.push(Finding {
                seq: expected,
                problem: format!("missing: the log goes from entry {} to entry {} (deleted)", expected - 1, row.seq),
            });
        } else if row.prev_hash != prev_hash {
            findings.push(Finding {
                seq: row.seq,
                problem: "its prev_hash is not the hash of the entry before it (the chain was broken here)".into(),
            });
        }
        match row.entry() {
            Err(problem) => findings.push(Finding { seq: row.seq, problem }),
            Ok(entry) if entry.record.hash() != row.hash => findings.push(Finding {
                seq: row.seq,
                problem: format!(
                    "its contents do not match its hash (changed after it was written; it records {} {} {} minor \
                     units)",
                    entry.record.kind.as_str(),
                    entry.record.currency,
                    entry.record.amount_minor
                ),
            }),
            Ok(_) => {}
        }
        hashes.insert(row.seq, &row.hash);
        expected = row.seq + 1;
        prev_hash = row.hash.clone();
    }
    let last = expected - 1;

    // Heads are checked in order: the entries between two heads are vouched for by the later one.
    let mut vouched_through = 0;
    for head in heads {
        let claims = match trusted.verify::<HeadClaims>(HEAD_TYPE, &head.jws) {
            Ok(claims) => claims,
            Err(problem) => {
                findings.push(Finding { seq: head.seq, problem: format!("the head signed at this entry: {problem}") });
                continue;
            }
        };
        if claims.seq != head.seq || claims.hash != head.hash {
            findings.push(Finding {
                seq: head.seq.min(claims.seq),
                problem: format!(
                    "the signed head row was altered: it says entry {} but its signature covers entry {} with hash {}",
                    head.seq, claims.seq, claims.hash
                ),
            });
            continue;
        }
        match hashes.get(&claims.seq) {
            None if claims.seq > last => findings.push(Finding {
                seq: last + 1,
                problem: format!(
                    "missing: the log ends at entry {last}, but a head signed at {} covers entries up to {} (the tail \
                     was removed)",
                    Millis(claims.iat * 1000).rfc3339(),
                    claims.seq
                ),
            }),
            None => {} // A gap already reported above.
            Some(hash) if *hash != claims.hash => findings.push(Finding {
                seq: vouched_through + 1,
                problem: format!(
                    "entries {}..={} do not match the head signed at {}: they were rewritten after it was signed",
                    vouched_through + 1,
                    claims.seq,
                    Millis(claims.iat * 1000).rfc3339()
                ),
            }),
            Some(_) => vouched_through = claims.seq,
        }
    }

    match findings.into_iter().min_by_key(|finding| finding.seq) {
        Some(first) => Err(first),
        None => Ok(ChainReport {
            entries: last,
            signed_heads: heads.len(),
            last_signed: heads.last().map(|head| (head.seq, Millis(head.signed_at_ms))),
        }),
    }
}
