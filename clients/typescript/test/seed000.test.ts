// Seed 000's "Full SDK Example", verbatim (between the markers), run against a real daemon.
// Before it: a webhook endpoint of this test's own receives a real delivery, which gives the
// example its `rawBody` and `request` and the endpoint's secret its `WEBHOOK_SECRET`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";

const deliveries: { body: string; headers: IncomingHttpHeaders }[] = [];
const receiver = createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (c: string) => (body += c));
  req.on("end", () => {
    deliveries.push({ body, headers: req.headers });
    res.writeHead(200, { "content-type": "application/json" });
    res.end("{}");
  });
});
await new Promise<void>((ok) => receiver.listen(0, "127.0.0.1", ok));
const receiverPort = (receiver.address() as { port: number }).port;

async function delivery(type: string): Promise<{ body: string; headers: IncomingHttpHeaders }> {
  for (let i = 0; i < 400; i++) {
    const d = deliveries.find((x) => JSON.parse(x.body).type === type);
    if (d) return d;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no ${type} delivery arrived`);
}

function toRequest(d: { body: string; headers: IncomingHttpHeaders }): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(d.headers)) if (typeof v === "string") headers.set(k, v);
  return new Request("http://localhost/api/webhooks", { method: "POST", headers, body: d.body });
}

const setup = new CalmonyPay({ apiKey: process.env.CALMONY_API_KEY! });
const hook = await setup.webhookEndpoints.create({
  url: `http://127.0.0.1:${receiverPort}/api/webhooks`,
  enabled_events: ["*"],
});
process.env.WEBHOOK_SECRET = hook.secret ?? undefined;
await setup.customers.create({ email: "first@example.com" });
const first = await delivery("customer.created");
const rawBody = first.body;
const request = toRequest(first);

// ---- seed 000, "Full SDK Example", verbatim ----
import { CalmonyPay } from "calmony-pay";
const pay = new CalmonyPay({ apiKey: process.env.CALMONY_API_KEY! });
// Create a customer
const customer = await pay.customers.create({
email: "user@example.com",
name: "Alice Smith",
});
// Tokenise a payment method
const paymentMethod = await pay.paymentMethods.create({
customerId: customer.id,
card: { number: "4111111111111111", expMonth: 12, expYear: 2026, cvc: "123" },
});
// Attach it to the customer
await pay.paymentMethods.attach(paymentMethod.id, { customerId: customer.id });
// Create and confirm a payment intent
const intent = await pay.paymentIntents.create({
amount: 2500, // in pence
currency: "gbp",
customerId: customer.id,
paymentMethodId: paymentMethod.id,
confirm: true,
});
console.log(intent.status); // "succeeded"
// Verify a webhook signature
const event = CalmonyPay.webhooks.verifySignature(
rawBody,
request.headers.get("Calmony-Signature")!,
process.env.WEBHOOK_SECRET!
);
// ---- end of seed 000 ----

test("seed 000's example: a customer, a card, a succeeded payment, a verified event", async () => {
  assert.match(customer.id, /^cus_/);
  assert.match(paymentMethod.id, /^pm_/);
  assert.equal(intent.status, "succeeded");
  assert.equal(intent.amount, 2500);
  assert.equal(event.type, "customer.created");
  assert.equal(event.data.object.id, JSON.parse(rawBody).data.object.id);
  const attached = await pay.paymentMethods.retrieve(paymentMethod.id);
  assert.equal(attached.customer, customer.id);
});

test("the payment's own event arrives signed and verifies; a tampered body does not", async () => {
  const d = await delivery("payment_intent.succeeded");
  const header = d.headers["calmony-signature"] as string;
  const verified = CalmonyPay.webhooks.verifySignature(d.body, header, process.env.WEBHOOK_SECRET!);
  assert.equal(verified.data.object.id, intent.id);
  assert.throws(
    () => CalmonyPay.webhooks.verifySignature(d.body.replace("2500", "2501"), header, process.env.WEBHOOK_SECRET!),
    /Bad signature/,
  );
  receiver.close();
});
