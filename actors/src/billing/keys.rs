//! Where billing's schedule and indexes live in Redis. Every file of billing names its keys
//! through here, so the layout is read in one place and no file reaches into another for a
//! key name.

use calmony_protocol::Mode;

use crate::store::Scope;

/// Real-time subscriptions waiting for the scheduler.
pub const DUE: &str = "cp:billing:due";
/// The scheduler's lease.
pub const LEASE: &str = "cp:billing:lease";
/// The cutoff time of a run in progress (so another daemon can finish it).
pub const RUN: &str = "cp:billing:run";

/// The due set of one test clock's subscriptions.
pub fn clock_due(clock: &str) -> String {
    format!("cp:billing:clock:{clock}")
}

/// The due set a subscription belongs in: its test clock's, or the real-time one.
pub fn due_set(test_clock: Option<&str>) -> String {
    match test_clock {
        Some(c) => clock_due(c),
        None => DUE.to_string(),
    }
}

/// A member of a due set: where the subscription lives.
pub fn due_member(scope: &Scope, sub: &str) -> String {
    format!("{}|{}|{sub}", scope.project, scope.mode)
}

pub fn parse_due_member(m: &str) -> Option<(Scope, String)> {
    let mut it = m.split('|');
    let (p, mode, sub) = (it.next()?, it.next()?, it.next()?);
    Some((
        Scope::new(p.to_string(), Mode::parse(mode)?),
        sub.to_string(),
    ))
}

/// Every invoice of a scope.
pub fn invoices(scope: &Scope) -> String {
    scope.key("invoices")
}

/// A customer's invoices.
pub fn customer_invoices(scope: &Scope, customer: &str) -> String {
    scope.key(&format!("customer:{customer}:invoices"))
}

/// A subscription's invoices (for `GET /v1/invoices?subscription=`).
pub fn subscription_invoices(scope: &Scope, sub: &str) -> String {
    scope.key(&format!("subscription:{sub}:invoices"))
}

/// A customer's invoice items not yet on an invoice (prorations among them).
pub fn pending_items(scope: &Scope, customer: &str) -> String {
    scope.key(&format!("customer:{customer}:pending_items"))
}

/// The gap-free invoice number sequence of a scope.
pub fn invoice_counter(scope: &Scope) -> String {
    scope.key("invoice_seq")
}

/// Every subscription of a scope.
pub fn subscriptions(scope: &Scope) -> String {
    scope.key("subscriptions")
}

/// A customer's subscriptions.
pub fn customer_subscriptions(scope: &Scope, customer: &str) -> String {
    scope.key(&format!("customer:{customer}:subscriptions"))
}

/// The marker that makes a subscription's period invoiced once.
pub fn period_marker(scope: &Scope, sub: &str, start: i64) -> String {
    scope.key(&format!("subscription:{sub}:period:{start}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_member_names_its_subscription_and_scope() {
        for (project, mode, sub) in [
            ("proj_1", Mode::Test, "sub_A"),
            ("default", Mode::Live, "sub_B"),
        ] {
            let scope = Scope::new(project.to_string(), mode);
            let (back, id) = parse_due_member(&due_member(&scope, sub)).expect("parses");
            assert_eq!(
                (back.project, back.mode, id.as_str()),
                (scope.project, mode, sub)
            );
        }
        for bad in ["", "p", "p|nomode|sub_1", "p|test"] {
            assert!(parse_due_member(bad).is_none(), "{bad}");
        }
    }
}
