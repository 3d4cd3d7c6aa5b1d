// The SDK against the real daemon: typed errors with request ids, paging, idempotency,
// retries, PDFs, the other namespaces, and webhook verification's refusals.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";

import {
  APIConnectionError,
  AuthenticationError,
  CalmonyPay,
  CardError,
  InvalidRequestError,
  RateLimitError,
  SignatureVerificationError,
  encodeQuery,
  shouldRetry,
} from "calmony-pay";

const apiKey = process.env.CALMONY_API_KEY!;
const pay = new CalmonyPay({ apiKey });

async function card(customerId: string, number = "4242424242424242") {
  const pm = await pay.paymentMethods.create({
    customerId,
    card: { number, expMonth: 12, expYear: 2035, cvc: "123" },
  });
  return pm.id;
}

test("a bad parameter is an InvalidRequestError naming it, with the request id", async () => {
  await assert.rejects(
    pay.customers.create({ email: "not-an-email" }),
    (e: unknown) => {
      assert.ok(e instanceof InvalidRequestError);
      assert.equal(e.param, "email");
      assert.equal(e.statusCode, 400);
      assert.match(e.requestId ?? "", /^req_/);
      return true;
    },
  );
  await assert.rejects(pay.customers.retrieve("cus_missing"), (e: unknown) => {
    assert.ok(e instanceof InvalidRequestError);
    assert.equal(e.code, "resource_missing");
    return true;
  });
});

test("a wrong key is an AuthenticationError", async () => {
  const bad = new CalmonyPay({ apiKey: "sk_test_nope" });
  await assert.rejects(bad.customers.list(), AuthenticationError);
});

test("a declined card is a CardError with its decline code", async () => {
  const c = await pay.customers.create({ email: "declined@example.com" });
  const pm = await card(c.id, "4000000000000002");
  await assert.rejects(
    pay.paymentIntents.create({ amount: 1000, currency: "gbp", customerId: c.id, paymentMethodId: pm, confirm: true }),
    (e: unknown) => {
      assert.ok(e instanceof CardError);
      assert.equal(e.statusCode, 402);
      assert.equal(e.declineCode, "generic_decline");
      return true;
    },
  );
});

test("for await walks every page; await gives the first", async () => {
  const tag = `page-${Date.now()}`;
  for (let i = 0; i < 7; i++) await pay.customers.create({ email: `${tag}-${i}@example.com`, metadata: { tag } });
  const first = await pay.customers.list({ limit: 3 });
  assert.equal(first.object, "list");
  assert.equal(first.data.length, 3);
  assert.equal(first.has_more, true);
  const seen: string[] = [];
  for await (const c of pay.customers.list({ limit: 3 })) seen.push(c.id);
  assert.ok(seen.length >= 7, `${seen.length} customers walked`);
  assert.equal(new Set(seen).size, seen.length, "no customer twice");
});

test("the same idempotency key answers the first request's object", async () => {
  const key = `idem-${Date.now()}`;
  const a = await pay.customers.create({ email: "once@example.com" }, { idempotencyKey: key });
  const b = await pay.customers.create({ email: "once@example.com" }, { idempotencyKey: key });
  assert.equal(a.id, b.id);
  const c = await pay.customers.create({ email: "once@example.com" });
  assert.notEqual(c.id, a.id, "each POST gets its own key");
});

test("429 and 503 are retried with the same idempotency key; Stripe-Should-Retry: false is not", async () => {
  const keys: string[] = [];
  let calls = 0;
  const flaky: typeof fetch = async (url, init) => {
    calls++;
    keys.push(new Headers(init?.headers).get("idempotency-key") ?? "");
    if (calls === 1) return new Response('{"error":{"type":"rate_limit_error","message":"slow down"}}', { status: 429, headers: { "retry-after": "0" } });
    if (calls === 2) return new Response('{"error":{"type":"api_error","message":"busy"}}', { status: 503, headers: { "retry-after": "0" } });
    return fetch(url, init);
  };
  const retrying = new CalmonyPay({ apiKey, fetch: flaky });
  const c = await retrying.customers.create({ email: "retry@example.com" });
  assert.match(c.id, /^cus_/);
  assert.equal(calls, 3);
  assert.equal(new Set(keys).size, 1, "one key for every attempt");

  let refused = 0;
  const never: typeof fetch = async () => {
    refused++;
    return new Response('{"error":{"type":"api_error","message":"no"}}', { status: 503, headers: { "stripe-should-retry": "false" } });
  };
  await assert.rejects(new CalmonyPay({ apiKey, fetch: never }).customers.list(), (e: unknown) => e instanceof Error && e.name === "APIError");
  assert.equal(refused, 1);

  let limited = 0;
  const always429: typeof fetch = async () => {
    limited++;
    return new Response('{"error":{"type":"rate_limit_error","message":"slow"}}', { status: 429, headers: { "retry-after": "0" } });
  };
  await assert.rejects(new CalmonyPay({ apiKey, fetch: always429, maxRetries: 2 }).customers.list(), RateLimitError);
  assert.equal(limited, 3);
  assert.equal(shouldRetry(400, null), false);
  assert.equal(shouldRetry(500, "true"), true);
});

test("network errors are retried, then an APIConnectionError", async () => {
  const down = new CalmonyPay({ apiKey, baseUrl: "http://127.0.0.1:9", maxRetries: 1, timeoutMs: 2000 });
  await assert.rejects(down.balance.retrieve(), APIConnectionError);
});

test("forms encode as the API reads them", () => {
  assert.equal(encodeQuery({ a: { b: 1 }, c: ["x", "y"], d: undefined }), "a%5Bb%5D=1&c%5B0%5D=x&c%5B1%5D=y");
});

test("an invoice, paid, downloads as PDF bytes; refunds, subscriptions and a test clock", async () => {
  const c = await pay.customers.create({ email: "billing@example.com" });
  const pm = await card(c.id);
  await pay.invoiceItems.create({ customer: c.id, amount: 4200, currency: "gbp", description: "Inventory" });
  const inv = await pay.invoices.create({ customer: c.id });
  await pay.invoices.finalize(inv.id);
  const paid = await pay.invoices.pay(inv.id, { payment_method: pm });
  assert.equal(paid.status, "paid");
  const pdf = await pay.invoices.downloadPdf(inv.id);
  assert.ok(pdf instanceof Uint8Array);
  assert.equal(Buffer.from(pdf.subarray(0, 4)).toString(), "%PDF");

  const pi = await pay.paymentIntents.create({ amount: 3000, currency: "gbp", customer: c.id, payment_method: pm, confirm: true });
  const refund = await pay.refunds.create({ payment_intent: pi.id, amount: 1000 });
  assert.equal(refund.amount, 1000);

  const clock = await pay.testHelpers.testClocks.create({ frozen_time: 1767225600 });
  const clocked = await pay.customers.create({ email: "clock@example.com", test_clock: clock.id });
  const clockedPm = await card(clocked.id);
  const product = await pay.products.create({ name: "Pro" });
  const price = await pay.prices.create({ product: product.id, currency: "gbp", unit_amount: 1500, recurring: { interval: "month" } });
  const sub = await pay.subscriptions.create({ customer: clocked.id, items: [{ price: price.id }], default_payment_method: clockedPm });
  assert.equal(sub.status, "active");
  await pay.testHelpers.testClocks.advance(clock.id, { frozen_time: 1767225600 + 32 * 86400 });
  let advanced = await pay.testHelpers.testClocks.retrieve(clock.id);
  for (let i = 0; i < 200 && advanced.status !== "ready"; i++) {
    await new Promise((r) => setTimeout(r, 50));
    advanced = await pay.testHelpers.testClocks.retrieve(clock.id);
  }
  const invoices = await pay.invoices.list({ subscription: sub.id });
  assert.ok(invoices.data.length >= 2, `${invoices.data.length} invoices after a month`);
  const cancelled = await pay.subscriptions.cancel(sub.id);
  assert.equal(cancelled.status, "canceled");

  const session = await pay.checkout.sessions.create({
    mode: "payment",
    success_url: "https://shop.example/ok",
    cancel_url: "https://shop.example/no",
    line_items: [{ quantity: 1, price_data: { currency: "gbp", unit_amount: 2500, product_data: { name: "Deposit" } } }],
  });
  assert.equal(session.status, "open");
  const portal = await pay.billingPortal.sessions.create({ customer: c.id, return_url: "https://shop.example/account" });
  assert.match(portal.url ?? "", /\/portal\//);
  const balance = await pay.balance.retrieve();
  assert.equal(balance.object, "balance");
  const events = await pay.events.list({ limit: 1 });
  assert.equal(events.data.length, 1);
});

test("verifySignature: several v1 values, and clear errors for stale, bad and malformed", () => {
  const body = JSON.stringify({ id: "evt_1", object: "event", type: "customer.created", data: { object: { id: "cus_1", object: "customer" } } });
  const now = Math.floor(Date.now() / 1000);
  const good = CalmonyPay.webhooks.computeSignature(body, now, "whsec_new");
  const old = CalmonyPay.webhooks.computeSignature(body, now, "whsec_old");
  const ev = CalmonyPay.webhooks.verifySignature(body, `t=${now},v1=${old},v1=${good}`, "whsec_new");
  assert.equal(ev.data.object.id, "cus_1");
  const stale = CalmonyPay.webhooks.signatureHeader(body, "whsec_new", now - 600);
  assert.throws(() => CalmonyPay.webhooks.verifySignature(body, stale, "whsec_new"), /Stale signature/);
  assert.doesNotThrow(() => CalmonyPay.webhooks.verifySignature(body, stale, "whsec_new", 900));
  assert.throws(() => CalmonyPay.webhooks.verifySignature(body, `t=${now},v1=${old}`, "whsec_new"), /Bad signature/);
  for (const bad of ["", "garbage", `t=${now}`, `v1=${good}`, `t=soon,v1=${good}`]) {
    assert.throws(() => CalmonyPay.webhooks.verifySignature(body, bad, "whsec_new"), (e: unknown) => {
      assert.ok(e instanceof SignatureVerificationError);
      assert.match((e as Error).message, /Malformed/);
      return true;
    });
  }
});

test("the CommonJS build loads with require and works", async () => {
  const require = createRequire(import.meta.url);
  const cjs = require("calmony-pay") as typeof import("calmony-pay");
  const client = new cjs.CalmonyPay({ apiKey });
  const list = await client.customers.list({ limit: 1 });
  assert.equal(list.object, "list");
  assert.equal(typeof cjs.CalmonyPay.webhooks.verifySignature, "function");
});
