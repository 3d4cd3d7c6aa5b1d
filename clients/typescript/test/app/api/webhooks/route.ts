// app/api/webhooks/route.ts
import { NextRequest, NextResponse } from "next/server";
import { CalmonyPay } from "calmony-pay";
export async function POST(req: NextRequest) {
const rawBody = await req.text();
const signature = req.headers.get("Calmony-Signature") ?? "";
const secret = process.env.CALMONY_WEBHOOK_SECRET!;
let event;
try {
event = CalmonyPay.webhooks.verifySignature(rawBody, signature, secret);
} catch (err) {
return NextResponse.json({ error: "Invalid signature" }, { status: 400 });
}
switch (event.type) {
case "payment_intent.succeeded":
console.log("Payment succeeded:", event.data.object.id);
break;
case "payment_intent.failed":
console.log("Payment failed:", event.data.object.id);
break;
case "subscription.created":
console.log("Subscription created:", event.data.object.id);
break;
case "invoice.paid":
console.log("Invoice paid:", event.data.object.id);
break;
}
return NextResponse.json({ received: true });
}