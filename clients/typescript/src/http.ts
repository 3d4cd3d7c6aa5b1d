import { randomUUID } from "node:crypto";

import { APIConnectionError, CalmonyPayError, errorFor, type ErrorBody } from "./errors.js";
import { OPERATIONS, type List } from "./generated.js";

export type OperationId = keyof typeof OPERATIONS;

/** Per-request options. */
export interface RequestOptions {
  /** Sent as `Idempotency-Key` on a POST; one is made for every POST without it. */
  idempotencyKey?: string;
  /** Overrides the client's `maxRetries` for this request. */
  maxRetries?: number;
}

export interface TransportConfig {
  apiKey: string;
  baseUrl: string;
  maxRetries: number;
  timeoutMs: number;
  fetch: typeof fetch;
}

/** `{a: {b: 1}, c: ["x"]}` -> `a[b]=1&c[0]=x`, as the API reads forms and query strings. */
export function encodeQuery(params: Record<string, unknown>): string {
  const parts: string[] = [];
  const walk = (prefix: string, value: unknown) => {
    if (value === undefined) return;
    if (value === null) {
      parts.push(`${encodeURIComponent(prefix)}=`);
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => walk(`${prefix}[${i}]`, v));
    } else if (typeof value === "object") {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) walk(`${prefix}[${k}]`, v);
    } else {
      parts.push(`${encodeURIComponent(prefix)}=${encodeURIComponent(String(value))}`);
    }
  };
  for (const [k, v] of Object.entries(params)) walk(k, v);
  return parts.join("&");
}

/** Whether a failed answer is worth retrying: the API's `Stripe-Should-Retry` decides when sent. */
export function shouldRetry(status: number, header: string | null): boolean {
  if (header === "true") return true;
  if (header === "false") return false;
  return status === 409 || status === 429 || status === 503;
}

/** How long to wait before retry number `attempt` (0-based): `Retry-After` when given. */
export function retryDelayMs(attempt: number, retryAfter: string | null): number {
  const seconds = retryAfter === null ? NaN : Number(retryAfter);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, 20) * 1000;
  const base = Math.min(500 * 2 ** attempt, 8000);
  return base * (0.75 + Math.random() * 0.5);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Transport {
  constructor(readonly config: TransportConfig) {}

  /** Calls operation `op` (its path's `{id}` filled with `id`) and answers the JSON. */
  async call<T>(op: OperationId, id: string | undefined, params: object | undefined, options: RequestOptions = {}): Promise<T> {
    const r = await this.send(op, id, params, options);
    return (await r.json()) as T;
  }

  /** As `call`, answering the body's bytes (a PDF). */
  async bytes(op: OperationId, id: string | undefined, options: RequestOptions = {}): Promise<Uint8Array> {
    const r = await this.send(op, id, undefined, options);
    return new Uint8Array(await r.arrayBuffer());
  }

  private async send(op: OperationId, id: string | undefined, params: object | undefined, options: RequestOptions): Promise<Response> {
    const { method, path } = OPERATIONS[op];
    let url = this.config.baseUrl.replace(/\/+$/, "") + path.replace("{id}", encodeURIComponent(id ?? ""));
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.config.apiKey}`,
      accept: "application/json",
      "user-agent": "calmony-pay-node/0.1.0",
    };
    let body: string | undefined;
    if (method === "POST") {
      headers["content-type"] = "application/json";
      headers["idempotency-key"] = options.idempotencyKey ?? randomUUID();
      body = JSON.stringify(params ?? {});
    } else if (params && Object.keys(params).length > 0) {
      url += `?${encodeQuery(params as Record<string, unknown>)}`;
    }
    const retries = options.maxRetries ?? this.config.maxRetries;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await this.config.fetch(url, {
          method,
          headers,
          body,
          signal: AbortSignal.timeout(this.config.timeoutMs),
        });
      } catch (e) {
        if (attempt < retries) {
          await sleep(retryDelayMs(attempt, null));
          continue;
        }
        throw new APIConnectionError(`Could not reach the API at ${this.config.baseUrl}: ${(e as Error).message}`, {
          type: "api_connection_error",
        });
      }
      if (response.ok) return response;
      const requestId = response.headers.get("request-id") ?? undefined;
      if (attempt < retries && shouldRetry(response.status, response.headers.get("stripe-should-retry"))) {
        await response.arrayBuffer().catch(() => undefined);
        await sleep(retryDelayMs(attempt, response.headers.get("retry-after")));
        continue;
      }
      let envelope: { error?: ErrorBody } | undefined;
      try {
        envelope = (await response.json()) as { error?: ErrorBody };
      } catch {
        envelope = undefined;
      }
      throw errorFor(response.status, envelope?.error, requestId);
    }
  }

  /** A list that is a promise of its first page and an async iterator over every object. */
  list<T extends { id: string }>(op: OperationId, id: string | undefined, params: object | undefined, options?: RequestOptions): ListRequest<T> {
    return new ListRequest<T>((p) => this.call<List<T>>(op, id, p, options), { ...(params ?? {}) });
  }
}

/** `await pay.customers.list()` is the first page; `for await (const c of pay.customers.list())` walks them all. */
export class ListRequest<T extends { id: string }> implements Promise<List<T>>, AsyncIterable<T> {
  readonly [Symbol.toStringTag] = "ListRequest";
  private first?: Promise<List<T>>;

  constructor(
    private readonly page: (params: Record<string, unknown>) => Promise<List<T>>,
    private readonly params: Record<string, unknown>,
  ) {}

  private firstPage(): Promise<List<T>> {
    this.first ??= this.page(this.params);
    return this.first;
  }

  then<A = List<T>, B = never>(
    onfulfilled?: ((value: List<T>) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.firstPage().then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<List<T> | B> {
    return this.firstPage().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<List<T>> {
    return this.firstPage().finally(onfinally);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let page = await this.firstPage();
    const backwards = this.params.ending_before !== undefined;
    for (;;) {
      yield* page.data;
      if (!page.has_more || page.data.length === 0) return;
      const edge = backwards ? page.data[0] : page.data[page.data.length - 1];
      const next = { ...this.params };
      if (backwards) next.ending_before = edge.id;
      else next.starting_after = edge.id;
      page = await this.page(next);
    }
  }

  /** Every object, in a list (at most `limit`, default 10 000). */
  async toArray(limit = 10_000): Promise<T[]> {
    const out: T[] = [];
    for await (const item of this) {
      out.push(item);
      if (out.length >= limit) break;
    }
    return out;
  }
}

export { CalmonyPayError };
