//! The simulated gateway over its real interface: signed form bodies into `Sandbox::handle`,
//! signed form answers out, a real Redis underneath. One module per area.

mod harness;

mod authorisation;
mod faults;
mod griffin;
mod hosted;
mod lifecycle;
mod routes;
mod signatures;
mod three_ds;
