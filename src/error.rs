//! Errors the user can fix, at the bottom of the crate: every layer may raise one, and
//! this module imports nothing of the crate, so no layer has to reach up into `app`.
//!
//! The dispatcher maps a [`UserError`] anywhere in an error chain to exit code 1.

/// An error the user can fix (exit code 1). Its message should end with a `hint:` line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);
