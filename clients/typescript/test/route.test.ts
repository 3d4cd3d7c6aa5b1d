// Seed 000's Next.js webhook route (test/app/api/webhooks/route.ts, verbatim), fed a real
// delivery from the daemon, a tampered one and an unsigned one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";

import { NextRequest } from "next/server";
import { CalmonyPay } from "calmony-pay";

import { POST } from "./app/api/webhooks/route.js";
import { onWebhook } from "./snippets/verify-webhook.js";

test("the seed's webhook route accepts a real delivery and refuses a forged one", async () => {
  const got: { body: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      got.push({ body, headers: req.headers });
      res.end("ok");
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  const pay = new CalmonyPay({ apiKey: process.env.CALMONY_API_KEY! });
  const hook = await pay.webhookEndpoints.create({
    url: `http://127.0.0.1:${port}/api/webhooks`,
    enabledEvents: ["customer.created"],
  });
  process.env.CALMONY_WEBHOOK_SECRET = hook.secret ?? undefined;
  const customer = await pay.customers.create({ email: "route@example.com" });
  for (let i = 0; i < 400 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
  server.close();
  assert.equal(got.length, 1, "one delivery");
  const d = got[0];
  const request = (body: string, signature?: string) =>
    new NextRequest("http://localhost/api/webhooks", {
      method: "POST",
      body,
      headers: signature === undefined ? {} : { "Calmony-Signature": signature },
    });
  const ok = await POST(request(d.body, d.headers["calmony-signature"] as string));
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { received: true });
  assert.equal(JSON.parse(d.body).data.object.id, customer.id);
  const forged = await POST(request(d.body.replace("route@", "evil@"), d.headers["calmony-signature"] as string));
  assert.equal(forged.status, 400);
  assert.deepEqual(await forged.json(), { error: "Invalid signature" });
  const unsigned = await POST(request(d.body));
  assert.equal(unsigned.status, 400);

  // The webhooks guide's TypeScript snippet, on the same delivery.
  const signature = d.headers["calmony-signature"] as string;
  assert.equal(onWebhook(d.body, signature, hook.secret ?? ""), `received customer.created for ${customer.id}`);
  assert.match(onWebhook(d.body, signature, "whsec_wrong"), /^refused: Bad signature/);
});
