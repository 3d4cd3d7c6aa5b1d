/** What the API says went wrong (Stripe's error envelope), with the request's id. */
export interface ErrorBody {
  type?: string;
  code?: string;
  decline_code?: string;
  message?: string;
  param?: string;
  [field: string]: unknown;
}

/** Every error the client throws. */
export class CalmonyPayError extends Error {
  readonly type: string;
  readonly code?: string;
  readonly declineCode?: string;
  readonly param?: string;
  readonly statusCode?: number;
  /** The `Request-Id` of the answer, for support. */
  readonly requestId?: string;
  readonly raw?: ErrorBody;

  constructor(message: string, init: { type?: string; statusCode?: number; requestId?: string; raw?: ErrorBody } = {}) {
    super(message);
    this.name = new.target.name;
    this.type = init.type ?? init.raw?.type ?? "api_error";
    this.code = init.raw?.code;
    this.declineCode = init.raw?.decline_code;
    this.param = init.raw?.param;
    this.statusCode = init.statusCode;
    this.requestId = init.requestId;
    this.raw = init.raw;
  }
}

/** The card was declined (402): see `code` and `declineCode`. */
export class CardError extends CalmonyPayError {}
/** A parameter is missing, unknown or invalid (`param` names it), or no such object. */
export class InvalidRequestError extends CalmonyPayError {}
/** No valid API key (401). */
export class AuthenticationError extends CalmonyPayError {}
/** Too many requests (429), after the retries. */
export class RateLimitError extends CalmonyPayError {}
/** An idempotency key reused with other parameters, or still in flight. */
export class IdempotencyError extends CalmonyPayError {}
/** The API failed (5xx), after the retries. */
export class APIError extends CalmonyPayError {}
/** The API could not be reached, after the retries. */
export class APIConnectionError extends CalmonyPayError {}
/** A webhook's signature header is malformed, stale, or matches no signature. */
export class SignatureVerificationError extends CalmonyPayError {}

/** The error for an answer's status and envelope. */
export function errorFor(status: number, body: ErrorBody | undefined, requestId?: string): CalmonyPayError {
  const init = { statusCode: status, requestId, raw: body };
  const message = body?.message ?? `The API answered ${status}.`;
  switch (body?.type) {
    case "card_error":
      return new CardError(message, init);
    case "invalid_request_error":
      return new InvalidRequestError(message, init);
    case "authentication_error":
      return new AuthenticationError(message, init);
    case "rate_limit_error":
      return new RateLimitError(message, init);
    case "idempotency_error":
      return new IdempotencyError(message, init);
  }
  if (status === 401) return new AuthenticationError(message, init);
  if (status === 402) return new CardError(message, init);
  if (status === 429) return new RateLimitError(message, init);
  if (status >= 400 && status < 500) return new InvalidRequestError(message, init);
  return new APIError(message, init);
}
