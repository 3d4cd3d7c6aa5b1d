import { CalmonyPay, SignatureVerificationError } from "calmony-pay";

// Your webhook handler: the raw body, the Calmony-Signature header, your endpoint's secret.
export function onWebhook(rawBody: string, signature: string, secret: string): string {
  try {
    const event = CalmonyPay.webhooks.verifySignature(rawBody, signature, secret);
    return `received ${event.type} for ${event.data.object.id}`;
  } catch (err) {
    if (err instanceof SignatureVerificationError) return `refused: ${err.message}`;
    throw err;
  }
}
