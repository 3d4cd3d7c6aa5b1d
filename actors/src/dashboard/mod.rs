//! The merchant dashboard's accounts: users with a role per project, sessions, the sign-in
//! throttle and the audit log. The pages are the daemon's (`pages::dashboard`); the figures
//! they show are `money::stats`.
//!
//! - [`access`]: pure decisions (roles, session expiry, throttle, CSRF), table-tested.
//! - [`accounts`]: the same, stored in Redis.

pub mod access;
pub mod accounts;
