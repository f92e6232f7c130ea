//! The reference bank API over real HTTP on loopback, with real SQLite ledgers in temp dirs.

#[path = "../support/mod.rs"]
mod support;

mod a_refused_token_is_consumed_and_its_refusal_replayed;
mod accounts_are_listed_for_read_scope;
mod approved_transfer_moves_money_once;
mod concurrent_transfers_conserve_money;
mod idempotency_key_replays_the_first_response;
mod refusals_change_nothing;
mod signing_keys_rotate_without_hammering_the_issuer;
mod the_bank_answers_what_happened_under_an_idempotency_key;
mod tokens_are_read_as_each_provider_spells_them;
