//! Both modes' Cardstream merchant accounts, and the [`PaymentGateway`] flows over them.

use std::time::Duration;

use calmony_config::Config;
use calmony_protocol::Mode;
use calmony_protocol::cardstream::codes;

use super::client::Cardstream;
use crate::gateway::flows::{Answer, PaymentGateway};
use crate::gateway::outcomes::{AuthOutcome, GatewayError};
use crate::gateway::requests::{
    Cancel, Capture, CardToTokenise, Refund, Sale, ThreeDsContinuation, TxnLookup,
};

/// Both modes' merchant accounts. The live one is absent until configured.
#[derive(Clone)]
pub struct MerchantAccounts {
    test: Option<Cardstream>,
    live: Option<Cardstream>,
}

impl MerchantAccounts {
    pub fn from_config(config: &Config) -> Self {
        let timeout = Duration::from_secs(config.gateway.timeout_seconds);
        let test = Cardstream::new(
            config.test_gateway_url(),
            &config.gateway.test.merchant_id,
            &config.gateway.test.secret,
            timeout,
        );
        let live = (!config.gateway.live.merchant_id.is_empty()).then(|| {
            Cardstream::new(
                config.gateway.live.url.clone(),
                &config.gateway.live.merchant_id,
                &config.gateway.live.secret,
                timeout,
            )
        });
        Self {
            test: Some(test),
            live,
        }
    }

    /// The merchant account of a mode. The mode comes from the API key, so this is the one
    /// place that decides which account money moves through.
    pub fn account(&self, mode: Mode) -> Result<&Cardstream, GatewayError> {
        match mode {
            Mode::Test => self.test.as_ref(),
            Mode::Live => self.live.as_ref(),
        }
        .ok_or(GatewayError::NotConfigured(mode))
    }
}

impl PaymentGateway for MerchantAccounts {
    fn request_timeout(&self, mode: Mode) -> Result<Duration, GatewayError> {
        self.account(mode).map(Cardstream::timeout)
    }

    fn tokenise(&self, mode: Mode, card: CardToTokenise) -> Answer<'_, crate::gateway::Tokenised> {
        Box::pin(async move { self.account(mode)?.tokenise(&card).await })
    }

    fn sale(&self, mode: Mode, sale: Sale) -> Answer<'_, AuthOutcome> {
        Box::pin(async move {
            // A duplicate (65554) is not a refusal: Cardstream has this sale already, and
            // what became of it is a query away, so it is an unknown outcome like a lost one.
            match self.account(mode)?.authorise(&sale).await? {
                AuthOutcome::Failed {
                    code: codes::DUPLICATE,
                    message,
                } => Err(GatewayError::Unknown {
                    code: codes::DUPLICATE,
                    message,
                }),
                outcome => Ok(outcome),
            }
        })
    }

    fn continue_three_ds(&self, mode: Mode, step: ThreeDsContinuation) -> Answer<'_, AuthOutcome> {
        Box::pin(async move {
            self.account(mode)?
                .continue_challenge(&step.reference, &step.posted)
                .await
        })
    }

    fn capture(&self, mode: Mode, capture: Capture) -> Answer<'_, crate::gateway::ManageOutcome> {
        Box::pin(async move {
            self.account(mode)?
                .capture(&capture.xref, capture.amount)
                .await
        })
    }

    fn cancel(&self, mode: Mode, cancel: Cancel) -> Answer<'_, crate::gateway::ManageOutcome> {
        Box::pin(async move { self.account(mode)?.void(&cancel.xref).await })
    }

    fn refund(&self, mode: Mode, refund: Refund) -> Answer<'_, crate::gateway::ManageOutcome> {
        Box::pin(async move {
            self.account(mode)?
                .refund(&refund.xref, refund.amount, &refund.attempt)
                .await
        })
    }

    fn query(
        &self,
        mode: Mode,
        lookup: TxnLookup,
    ) -> Answer<'_, Option<crate::gateway::TxnStatus>> {
        Box::pin(async move { self.account(mode)?.status(&lookup).await })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn cardstream_is_held_as_the_payments_gateway() {
        crate::gateway::install_tls_provider();
        let config = Config::default();
        let gateway: Arc<dyn PaymentGateway> = Arc::new(MerchantAccounts::from_config(&config));
        assert!(gateway.request_timeout(Mode::Test).is_ok());
        assert_eq!(
            gateway.request_timeout(Mode::Live),
            Err(GatewayError::NotConfigured(Mode::Live))
        );
    }
}
