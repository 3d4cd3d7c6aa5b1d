"""stripe-python (Stripe's official library) against a real Calmony Pay daemon.

Run by scripts/test through clients/typescript/scripts/with-daemon.mjs, which starts the
daemon and sets CALMONY_API_BASE and CALMONY_API_KEY.
"""

import http.server
import os
import sys
import threading
import time

import pytest
import stripe

BASE = os.environ["CALMONY_API_BASE"]
KEY = os.environ["CALMONY_API_KEY"]


@pytest.fixture(autouse=True)
def configured():
    stripe.api_key = KEY
    stripe.api_base = BASE
    stripe.max_network_retries = 2
    yield


def card(customer=None, number="4242424242424242"):
    params = dict(type="card", card=dict(number=number, exp_month=12, exp_year=2035, cvc="123"))
    if customer:
        params["customer"] = customer
    return stripe.PaymentMethod.create(**params)


def test_customer_card_confirm():
    customer = stripe.Customer.create(email="py@example.com", name="Py Thon", metadata={"ref": "1"})
    assert customer.id.startswith("cus_")
    pm = card()
    stripe.PaymentMethod.attach(pm.id, customer=customer.id)
    intent = stripe.PaymentIntent.create(amount=2500, currency="gbp", customer=customer.id, payment_method=pm.id)
    assert intent.status == "requires_confirmation"
    intent = stripe.PaymentIntent.confirm(intent.id)
    assert intent.status == "succeeded"
    listed = [c.id for c in stripe.Customer.list(limit=1).auto_paging_iter()]
    assert customer.id in listed


def test_a_decline_is_a_card_error():
    customer = stripe.Customer.create(email="declined@example.com")
    pm = card(customer.id, "4000000000000002")
    with pytest.raises(stripe.error.CardError) as e:
        stripe.PaymentIntent.create(amount=1000, currency="gbp", customer=customer.id, payment_method=pm.id, confirm=True)
    assert e.value.code == "card_declined"


def test_refund():
    pm = card()
    intent = stripe.PaymentIntent.create(amount=4000, currency="gbp", payment_method=pm.id, confirm=True)
    refund = stripe.Refund.create(payment_intent=intent.id, amount=1500)
    assert refund.status == "succeeded"
    assert stripe.PaymentIntent.retrieve(intent.id, expand=["latest_charge"]).latest_charge.amount_refunded == 1500


def test_checkout_session():
    session = stripe.checkout.Session.create(
        mode="payment",
        success_url="https://shop.example/ok?s={CHECKOUT_SESSION_ID}",
        cancel_url="https://shop.example/no",
        line_items=[{"quantity": 2, "price_data": {"currency": "gbp", "unit_amount": 1250, "product_data": {"name": "Ticket"}}}],
    )
    assert session.status == "open"
    assert session.amount_total == 2500
    assert "/pay/checkout/" in session.url
    expired = stripe.checkout.Session.expire(session.id)
    assert expired.status == "expired"


def test_subscription_advanced_with_a_test_clock():
    start = 1767225600
    clock = stripe.test_helpers.TestClock.create(frozen_time=start)
    customer = stripe.Customer.create(email="sub@example.com", test_clock=clock.id)
    pm = card(customer.id)
    product = stripe.Product.create(name="Pro")
    price = stripe.Price.create(product=product.id, currency="gbp", unit_amount=1500, recurring={"interval": "month"})
    sub = stripe.Subscription.create(customer=customer.id, items=[{"price": price.id}], default_payment_method=pm.id)
    assert sub.status == "active"
    stripe.test_helpers.TestClock.advance(clock.id, frozen_time=start + 32 * 86400)
    for _ in range(200):
        if stripe.test_helpers.TestClock.retrieve(clock.id).status == "ready":
            break
        time.sleep(0.05)
    invoices = stripe.Invoice.list(subscription=sub.id)
    assert len(invoices.data) >= 2
    assert all(i.status == "paid" for i in invoices.data)


def test_a_webhook_verified_with_construct_event():
    got = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = stripe.WebhookEndpoint.create(
        url=f"http://127.0.0.1:{server.server_port}/hook", enabled_events=["customer.created"]
    )
    customer = stripe.Customer.create(email="hook@example.com")
    for _ in range(400):
        if got:
            break
        time.sleep(0.025)
    server.shutdown()
    assert got, "no delivery"
    body, signature = got[0]
    event = stripe.Webhook.construct_event(body, signature, endpoint.secret)
    assert event.type == "customer.created"
    assert event.data.object.id == customer.id
    with pytest.raises(stripe.error.SignatureVerificationError):
        stripe.Webhook.construct_event(body.replace(b"hook@", b"evil@"), signature, endpoint.secret)

    # The webhooks guide's Python snippet, on the same delivery.
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "snippets"))
    from verify_webhook import on_webhook

    assert on_webhook(body, signature, endpoint.secret) == f"received customer.created for {customer.id}"
    assert on_webhook(body, signature, "whsec_wrong").startswith("refused: ")
