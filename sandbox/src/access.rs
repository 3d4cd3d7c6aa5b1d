//! Who may use the simulator's control routes.
//!
//! The gateway routes (`direct/`, `hosted/`, the ACS pages) are the simulated Cardstream: the
//! daemon and the cardholder's browser reach them as they reach Cardstream, and a request
//! there proves itself as Cardstream's would (a signature with the merchant secret, a token
//! of a challenge or a hosted session). The control routes are not Cardstream's: fault
//! injection and settlement act on every project's test mode at once, and the ledger lists
//! every project's charges. So:
//!
//! - faults and settlement need the operator's token (`sandbox.operator_token`, a bearer
//!   token compared in constant time), and are off (404) while none is configured;
//! - the ledger shows everything to the operator, and to a project's test secret key only
//!   that project's own charges (a developer following the README sees their own payments).
//!
//! The daemon's edge establishes the [`Caller`] (it knows API keys); [`decide`] is the rule.

use subtle::ConstantTimeEq;

/// A control route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Faults,
    Settle,
    Ledger,
    /// The sandbox bank's ledger: operator only (it lists every project's bank payments).
    BankLedger,
    /// The Griffin sandbox's test credit and its other operator routes (faults, releasing
    /// held credits, rotating the webhook key, delivery attempts): operator only (the credit
    /// creates money; the rest change or show what every tester shares).
    GriffinCredit,
}

impl Control {
    /// The control route at `path`, if it is one (whatever the method).
    pub fn of(path: &str) -> Option<Control> {
        match path {
            "/sandbox/faults" => Some(Control::Faults),
            "/sandbox/settle" => Some(Control::Settle),
            "/sandbox/ledger" => Some(Control::Ledger),
            "/sandbox/bank/ledger" => Some(Control::BankLedger),
            "/sandbox/griffin/credit"
            | "/sandbox/griffin/credit/release"
            | "/sandbox/griffin/faults"
            | "/sandbox/griffin/rotate-key"
            | "/sandbox/griffin/deliveries" => Some(Control::GriffinCredit),
            _ => None,
        }
    }
}

/// Who asks, as the edge established it. A credential that is neither the operator's token
/// nor a project's test secret key is [`Caller::Anonymous`]: it proves nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    /// Presented the operator's token.
    Operator,
    /// Presented a test-mode secret key of this project.
    Project(String),
}

/// What a caller may see of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    All,
    /// Only the charges of this project's test mode.
    Project(String),
}

/// The answer to a caller at a control route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Granted(View),
    /// 401: the route is on, but this caller may not use it.
    Unauthorized,
    /// 404: the route is off (no operator token is configured).
    Off,
}

/// Whether `caller` may use `control`, given whether an operator token is configured.
pub fn decide(control: Control, caller: &Caller, operator_configured: bool) -> Access {
    match (caller, control) {
        (Caller::Operator, _) if operator_configured => Access::Granted(View::All),
        (Caller::Project(project), Control::Ledger) => {
            Access::Granted(View::Project(project.clone()))
        }
        // The ledger is always on: a project's key reads its own part.
        (_, Control::Ledger) => Access::Unauthorized,
        (_, Control::Faults | Control::Settle | Control::BankLedger | Control::GriffinCredit)
            if operator_configured =>
        {
            Access::Unauthorized
        }
        (_, Control::Faults | Control::Settle | Control::BankLedger | Control::GriffinCredit) => {
            Access::Off
        }
    }
}

/// Whether `presented` is the operator's token. Constant time in the token's content; never
/// true when no token is configured.
pub fn is_operator(configured: Option<&str>, presented: &str) -> bool {
    match configured {
        Some(token) if !token.is_empty() => {
            bool::from(token.as_bytes().ct_eq(presented.as_bytes()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_control_routes_answer_by_caller() {
        let acme = Caller::Project("prj_acme".into());
        let granted_all = Access::Granted(View::All);
        let own = Access::Granted(View::Project("prj_acme".into()));
        use Access::{Off, Unauthorized};
        use Control::{BankLedger, Faults, GriffinCredit, Ledger, Settle};
        for (control, caller, configured, expected) in [
            (Faults, &Caller::Operator, true, &granted_all),
            (Settle, &Caller::Operator, true, &granted_all),
            (Ledger, &Caller::Operator, true, &granted_all),
            (Faults, &Caller::Operator, false, &Off),
            (Ledger, &Caller::Operator, false, &Unauthorized),
            (Faults, &acme, true, &Unauthorized),
            (Settle, &acme, false, &Off),
            (Ledger, &acme, true, &own),
            (Ledger, &acme, false, &own),
            (Faults, &Caller::Anonymous, true, &Unauthorized),
            (Settle, &Caller::Anonymous, true, &Unauthorized),
            (Ledger, &Caller::Anonymous, true, &Unauthorized),
            (Faults, &Caller::Anonymous, false, &Off),
            (Settle, &Caller::Anonymous, false, &Off),
            (Ledger, &Caller::Anonymous, false, &Unauthorized),
            (BankLedger, &Caller::Operator, true, &granted_all),
            (BankLedger, &acme, true, &Unauthorized),
            (BankLedger, &Caller::Anonymous, true, &Unauthorized),
            (BankLedger, &Caller::Anonymous, false, &Off),
            (GriffinCredit, &Caller::Operator, true, &granted_all),
            (GriffinCredit, &acme, true, &Unauthorized),
            (GriffinCredit, &Caller::Anonymous, false, &Off),
        ] {
            assert_eq!(
                &decide(control, caller, configured),
                expected,
                "{control:?} {caller:?} {configured}"
            );
        }
    }

    #[test]
    fn only_the_configured_token_is_the_operator() {
        let token = "t".repeat(32);
        assert!(is_operator(Some(&token), &token));
        assert!(!is_operator(Some(&token), &"t".repeat(31)));
        assert!(!is_operator(Some(&token), ""));
        assert!(!is_operator(Some(""), ""));
        assert!(!is_operator(None, &token));
        assert_eq!(Control::of("/sandbox/ledger"), Some(Control::Ledger));
        assert_eq!(Control::of("/sandbox/direct/"), None);
    }
}
