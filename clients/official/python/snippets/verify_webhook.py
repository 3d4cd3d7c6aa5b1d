import stripe


# Your webhook handler: the raw body, the Stripe-Signature (or Calmony-Signature) header,
# your endpoint's secret.
def on_webhook(raw_body: bytes, signature: str, secret: str) -> str:
    try:
        event = stripe.Webhook.construct_event(raw_body, signature, secret)
    except stripe.error.SignatureVerificationError as e:
        return f"refused: {e}"
    return f"received {event.type} for {event.data.object.id}"
