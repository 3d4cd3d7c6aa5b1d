import { createHmac, timingSafeEqual } from "node:crypto";

import { SignatureVerificationError } from "./errors.js";

/** An event as delivered to a webhook endpoint. */
export interface WebhookEvent {
  id: string;
  object: "event";
  type: string;
  created: number;
  livemode: boolean;
  api_version?: string;
  data: { object: { id: string; object: string; [field: string]: any }; previous_attributes?: Record<string, unknown> };
  [field: string]: any;
}

/** The expected `v1` signature of `payload` signed at `timestamp`. */
export function computeSignature(payload: string | Uint8Array, timestamp: number, secret: string): string {
  const mac = createHmac("sha256", secret);
  mac.update(`${timestamp}.`);
  mac.update(typeof payload === "string" ? Buffer.from(payload, "utf8") : payload);
  return mac.digest("hex");
}

/** A `Calmony-Signature` header for `payload` (for tests of your own webhook route). */
export function signatureHeader(payload: string | Uint8Array, secret: string, timestamp = Math.floor(Date.now() / 1000)): string {
  return `t=${timestamp},v1=${computeSignature(payload, timestamp, secret)}`;
}

/**
 * Checks `header` (`t=<unix>,v1=<hex>[,v1=<hex>…]`, as `Calmony-Signature` and
 * `Stripe-Signature` carry it) against `payload`, the raw body, and answers the parsed event.
 * Any `v1` may match (two are sent while a rolled secret overlaps); compared in constant time.
 * Throws `SignatureVerificationError` for a malformed header, a timestamp more than
 * `toleranceSeconds` away from now, or no matching signature.
 */
export function verifySignature(
  payload: string | Uint8Array,
  header: string,
  secret: string,
  toleranceSeconds = 300,
): WebhookEvent {
  if (typeof header !== "string" || header.trim() === "") {
    throw new SignatureVerificationError("Malformed signature header: it is empty.", { type: "signature_verification_error" });
  }
  let timestamp: number | undefined;
  const signatures: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 1) {
      throw new SignatureVerificationError(`Malformed signature header: "${part.trim()}" is not key=value.`, { type: "signature_verification_error" });
    }
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (k === "t") {
      if (!/^\d+$/.test(v)) {
        throw new SignatureVerificationError("Malformed signature header: t is not a unix time.", { type: "signature_verification_error" });
      }
      timestamp = Number(v);
    } else if (k === "v1") {
      signatures.push(v);
    }
  }
  if (timestamp === undefined) {
    throw new SignatureVerificationError("Malformed signature header: no timestamp (t=).", { type: "signature_verification_error" });
  }
  if (signatures.length === 0) {
    throw new SignatureVerificationError("Malformed signature header: no v1 signature.", { type: "signature_verification_error" });
  }
  const age = Math.floor(Date.now() / 1000) - timestamp;
  if (toleranceSeconds > 0 && Math.abs(age) > toleranceSeconds) {
    throw new SignatureVerificationError(
      `Stale signature: signed ${age} s ago, more than the tolerance of ${toleranceSeconds} s.`,
      { type: "signature_verification_error" },
    );
  }
  const expected = Buffer.from(computeSignature(payload, timestamp, secret), "utf8");
  const matched = signatures.some((s) => {
    const given = Buffer.from(s, "utf8");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matched) {
    throw new SignatureVerificationError("Bad signature: no v1 signature matches the payload and secret.", {
      type: "signature_verification_error",
    });
  }
  const text = typeof payload === "string" ? payload : Buffer.from(payload).toString("utf8");
  try {
    return JSON.parse(text) as WebhookEvent;
  } catch {
    throw new SignatureVerificationError("The signed payload is not JSON.", { type: "signature_verification_error" });
  }
}
