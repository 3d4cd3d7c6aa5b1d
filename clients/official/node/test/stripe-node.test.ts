// stripe-node (Stripe's official library), used from TypeScript, against a real Calmony Pay
// daemon (started by clients/typescript/scripts/with-daemon.mjs: CALMONY_API_BASE and
// CALMONY_API_KEY).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";

import Stripe from "stripe";

const base = new URL(process.env.CALMONY_API_BASE!);
const stripe = new Stripe(process.env.CALMONY_API_KEY!, {
  host: base.hostname,
  port: Number(base.port),
  protocol: "http",
  maxNetworkRetries: 2,
});

async function card(customer?: string, number = "4242424242424242"): Promise<Stripe.PaymentMethod> {
  return stripe.paymentMethods.create({
    type: "card",
    // Raw card numbers: the daemon's test mode tokenises them (Stripe's API would refuse).
    card: { number, exp_month: 12, exp_year: 2035, cvc: "123" } as Stripe.PaymentMethodCreateParams.Card,
    ...(customer ? { customer } : {}),
  } as Stripe.PaymentMethodCreateParams);
}

test("customer, card, confirm", async () => {
  const customer = await stripe.customers.create({ email: "node@example.com", name: "Node" });
  assert.match(customer.id, /^cus_/);
  const pm = await card();
  await stripe.paymentMethods.attach(pm.id, { customer: customer.id });
  let intent = await stripe.paymentIntents.create({ amount: 2500, currency: "gbp", customer: customer.id, payment_method: pm.id });
  assert.equal(intent.status, "requires_confirmation");
  intent = await stripe.paymentIntents.confirm(intent.id);
  assert.equal(intent.status, "succeeded");
  const ids: string[] = [];
  for await (const c of stripe.customers.list({ limit: 2 })) ids.push(c.id);
  assert.ok(ids.includes(customer.id));
});

test("a decline is a StripeCardError", async () => {
  const pm = await card(undefined, "4000000000000002");
  await assert.rejects(
    stripe.paymentIntents.create({ amount: 1000, currency: "gbp", payment_method: pm.id, confirm: true }),
    (e: unknown) => e instanceof Stripe.errors.StripeCardError && e.code === "card_declined",
  );
});

test("a refund", async () => {
  const pm = await card();
  const intent = await stripe.paymentIntents.create({ amount: 4000, currency: "gbp", payment_method: pm.id, confirm: true });
  const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 1500 });
  assert.equal(refund.status, "succeeded");
  assert.equal(refund.amount, 1500);
});

test("a checkout session", async () => {
  const session = await stripe.checkout.sessions.create({
    mode: "payment",
    success_url: "https://shop.example/ok",
    cancel_url: "https://shop.example/no",
    line_items: [{ quantity: 2, price_data: { currency: "gbp", unit_amount: 1250, product_data: { name: "Ticket" } } }],
  });
  assert.equal(session.status, "open");
  assert.equal(session.amount_total, 2500);
  assert.match(session.url ?? "", /\/pay\/checkout\//);
});

test("a subscription advanced with a test clock", async () => {
  const start = 1767225600;
  const clock = await stripe.testHelpers.testClocks.create({ frozen_time: start });
  const customer = await stripe.customers.create({ email: "sub@example.com", test_clock: clock.id });
  const pm = await card(customer.id);
  const product = await stripe.products.create({ name: "Pro" });
  const price = await stripe.prices.create({ product: product.id, currency: "gbp", unit_amount: 1500, recurring: { interval: "month" } });
  const sub = await stripe.subscriptions.create({ customer: customer.id, items: [{ price: price.id }], default_payment_method: pm.id });
  assert.equal(sub.status, "active");
  await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: start + 32 * 86400 });
  for (let i = 0; i < 200; i++) {
    if ((await stripe.testHelpers.testClocks.retrieve(clock.id)).status === "ready") break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const invoices = await stripe.invoices.list({ subscription: sub.id });
  assert.ok(invoices.data.length >= 2, `${invoices.data.length} invoices`);
  assert.ok(invoices.data.every((i) => i.status === "paid"));
});

test("a webhook verified with constructEvent", async () => {
  const got: { body: string; signature: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ body, signature: String(req.headers["stripe-signature"]) });
      res.end("ok");
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  const endpoint = await stripe.webhookEndpoints.create({ url: `http://127.0.0.1:${port}/hook`, enabled_events: ["customer.created"] });
  const customer = await stripe.customers.create({ email: "hook@example.com" });
  for (let i = 0; i < 400 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
  server.close();
  assert.equal(got.length, 1);
  const event = stripe.webhooks.constructEvent(got[0].body, got[0].signature, endpoint.secret!);
  assert.equal(event.type, "customer.created");
  assert.equal((event.data.object as Stripe.Customer).id, customer.id);
  assert.throws(() => stripe.webhooks.constructEvent(got[0].body.replace("hook@", "evil@"), got[0].signature, endpoint.secret!));
});
