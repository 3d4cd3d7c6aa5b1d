//! What every request handler shares: the configuration, the store, the services that do the
//! work, and the sandbox. Built once at start-up ([`crate::runtime`]), read by the edge and by
//! the handlers it calls; it names no handler, so every layer may hold it.

use calmony_actors::Store;
use calmony_actors::payments::Payments;
use calmony_config::Config;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::edge::remembered;

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub metrics: PrometheusHandle,
    pub payments: Payments,
    /// The IntentProcessor actor: payment commands go to it by message.
    pub intents: calmony_actors::system::IntentProcessorHandle,
    pub webhooks: calmony_actors::webhooks::Webhooks,
    pub billing: calmony_actors::billing::Billing,
    pub checkout: calmony_actors::checkout::Checkout,
    /// The customer portal: its sessions, configurations and page actions.
    pub portal: calmony_actors::billing_portal::Portal,
    /// The Cardstream simulator, when `sandbox.enabled`.
    pub sandbox: Option<calmony_sandbox::Sandbox>,
    /// Keys and objects of earlier key checks, for a payment's create to defer its own.
    pub remembered: remembered::Remembered,
    /// Griffin's webhooks, per mode; its `changed(mode)` is what reconciliation waits on.
    pub griffin_inbox: std::sync::Arc<calmony_actors::gateway::griffin::inbox::Inbox>,
}
