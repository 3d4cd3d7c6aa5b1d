/**
 * `calmony-pay`: the Calmony Pay API from TypeScript and JavaScript.
 *
 *     import { CalmonyPay } from "calmony-pay";
 *     const pay = new CalmonyPay({ apiKey: process.env.CALMONY_API_KEY! });
 *     const customer = await pay.customers.create({ email: "user@example.com" });
 *
 * Parameter and object types are generated from the daemon's `/openapi.json`
 * (`src/generated.ts`); every POST carries an idempotency key; network errors, 409, 429 and
 * 503 are retried with backoff (the API's `Stripe-Should-Retry` decides when it is sent).
 */
import * as G from "./generated.js";
import { Transport, type ListRequest, type OperationId, type RequestOptions } from "./http.js";
import { computeSignature, signatureHeader, verifySignature, type WebhookEvent } from "./webhooks.js";

export * from "./errors.js";
export type * from "./generated.js";
export { ListRequest, encodeQuery, shouldRetry, retryDelayMs, type RequestOptions } from "./http.js";
export type { WebhookEvent } from "./webhooks.js";

export interface CalmonyPayConfig {
  /** A secret key: `sk_test_…` or `sk_live_…`. */
  apiKey: string;
  /** Where the API is; default `$CALMONY_API_BASE`, else `https://api.calmonypay.com`. */
  baseUrl?: string;
  /** Retries of a request that failed on the network or with 409, 429 or 503; default 3. */
  maxRetries?: number;
  /** Per attempt; default 80 000 ms. */
  timeoutMs?: number;
  /** A `fetch` of your own (tests, proxies); default the global one (Node 18+). */
  fetch?: typeof fetch;
}

type Params<T> = T;

function envBase(): string | undefined {
  return typeof process !== "undefined" ? process.env?.CALMONY_API_BASE : undefined;
}

export class CalmonyPay {
  /** Webhook signatures: `CalmonyPay.webhooks.verifySignature(rawBody, header, secret)`. */
  static readonly webhooks = { verifySignature, computeSignature, signatureHeader };
  readonly webhooks = CalmonyPay.webhooks;

  readonly customers;
  readonly paymentMethods;
  readonly paymentIntents;
  readonly refunds;
  readonly charges;
  readonly subscriptions;
  readonly invoices;
  readonly invoiceItems;
  readonly products;
  readonly prices;
  readonly taxRates;
  readonly checkout;
  readonly billingPortal;
  readonly webhookEndpoints;
  readonly events;
  readonly balance;
  readonly balanceTransactions;
  readonly payouts;
  readonly testHelpers;

  constructor(config: CalmonyPayConfig) {
    if (!config || typeof config.apiKey !== "string" || config.apiKey === "") {
      throw new TypeError("CalmonyPay needs { apiKey }: a secret key, sk_test_… or sk_live_….");
    }
    const t = new Transport({
      apiKey: config.apiKey,
      baseUrl: config.baseUrl ?? envBase() ?? "https://api.calmonypay.com",
      maxRetries: config.maxRetries ?? 3,
      timeoutMs: config.timeoutMs ?? 80_000,
      fetch: config.fetch ?? globalThis.fetch.bind(globalThis),
    });
    const one =
      <P extends object, R>(op: OperationId) =>
      (params?: Params<P>, options?: RequestOptions): Promise<R> =>
        t.call<R>(op, undefined, params, options);
    const byId =
      <P extends object, R>(op: OperationId) =>
      (id: string, params?: Params<P>, options?: RequestOptions): Promise<R> =>
        t.call<R>(op, id, params, options);
    const list =
      <P extends object, R extends { id: string }>(op: OperationId) =>
      (params?: Params<P>, options?: RequestOptions): ListRequest<R> =>
        t.list<R>(op, undefined, params, options);
    const listOf =
      <P extends object, R extends { id: string }>(op: OperationId) =>
      (id: string, params?: Params<P>, options?: RequestOptions): ListRequest<R> =>
        t.list<R>(op, id, params, options);

    this.customers = {
      create: one<G.PostV1CustomersParams, G.Customer>("postV1Customers"),
      retrieve: byId<G.GetV1CustomersIdParams, G.Customer | G.Deleted>("getV1CustomersId"),
      update: byId<G.PostV1CustomersIdParams, G.Customer>("postV1CustomersId"),
      delete: byId<G.DeleteV1CustomersIdParams, G.Deleted>("deleteV1CustomersId"),
      del: byId<G.DeleteV1CustomersIdParams, G.Deleted>("deleteV1CustomersId"),
      list: list<G.GetV1CustomersParams, G.Customer>("getV1Customers"),
      listPaymentMethods: listOf<G.GetV1CustomersIdPaymentMethodsParams, G.PaymentMethod>("getV1CustomersIdPaymentMethods"),
    };
    this.paymentMethods = {
      create: one<G.PostV1PaymentMethodsParams, G.PaymentMethod>("postV1PaymentMethods"),
      retrieve: byId<G.GetV1PaymentMethodsIdParams, G.PaymentMethod>("getV1PaymentMethodsId"),
      list: list<G.GetV1PaymentMethodsParams, G.PaymentMethod>("getV1PaymentMethods"),
      attach: byId<G.PostV1PaymentMethodsIdAttachParams, G.PaymentMethod>("postV1PaymentMethodsIdAttach"),
      detach: byId<G.PostV1PaymentMethodsIdDetachParams, G.PaymentMethod>("postV1PaymentMethodsIdDetach"),
    };
    this.paymentIntents = {
      create: one<G.PostV1PaymentIntentsParams, G.PaymentIntent>("postV1PaymentIntents"),
      retrieve: byId<G.GetV1PaymentIntentsIdParams, G.PaymentIntent>("getV1PaymentIntentsId"),
      update: byId<G.PostV1PaymentIntentsIdParams, G.PaymentIntent>("postV1PaymentIntentsId"),
      confirm: byId<G.PostV1PaymentIntentsIdConfirmParams, G.PaymentIntent>("postV1PaymentIntentsIdConfirm"),
      capture: byId<G.PostV1PaymentIntentsIdCaptureParams, G.PaymentIntent>("postV1PaymentIntentsIdCapture"),
      cancel: byId<G.PostV1PaymentIntentsIdCancelParams, G.PaymentIntent>("postV1PaymentIntentsIdCancel"),
      list: list<G.GetV1PaymentIntentsParams, G.PaymentIntent>("getV1PaymentIntents"),
    };
    this.refunds = {
      create: one<G.PostV1RefundsParams, G.Refund>("postV1Refunds"),
      retrieve: byId<G.GetV1RefundsIdParams, G.Refund>("getV1RefundsId"),
      list: list<G.GetV1RefundsParams, G.Refund>("getV1Refunds"),
    };
    this.charges = {
      retrieve: byId<G.GetV1ChargesIdParams, G.Charge>("getV1ChargesId"),
      list: list<G.GetV1ChargesParams, G.Charge>("getV1Charges"),
    };
    this.subscriptions = {
      create: one<G.PostV1SubscriptionsParams, G.Subscription>("postV1Subscriptions"),
      retrieve: byId<G.GetV1SubscriptionsIdParams, G.Subscription>("getV1SubscriptionsId"),
      update: byId<G.PostV1SubscriptionsIdParams, G.Subscription>("postV1SubscriptionsId"),
      cancel: byId<G.DeleteV1SubscriptionsIdParams, G.Subscription>("deleteV1SubscriptionsId"),
      list: list<G.GetV1SubscriptionsParams, G.Subscription>("getV1Subscriptions"),
    };
    this.invoices = {
      create: one<G.PostV1InvoicesParams, G.Invoice>("postV1Invoices"),
      retrieve: byId<G.GetV1InvoicesIdParams, G.Invoice>("getV1InvoicesId"),
      list: list<G.GetV1InvoicesParams, G.Invoice>("getV1Invoices"),
      delete: byId<G.DeleteV1InvoicesIdParams, G.Deleted>("deleteV1InvoicesId"),
      finalize: byId<G.PostV1InvoicesIdFinalizeParams, G.Invoice>("postV1InvoicesIdFinalize"),
      pay: byId<G.PostV1InvoicesIdPayParams, G.Invoice>("postV1InvoicesIdPay"),
      void: byId<G.PostV1InvoicesIdVoidParams, G.Invoice>("postV1InvoicesIdVoid"),
      markUncollectible: byId<G.PostV1InvoicesIdMarkUncollectibleParams, G.Invoice>("postV1InvoicesIdMarkUncollectible"),
      listLines: listOf<G.GetV1InvoicesIdLinesParams, G.LineItem>("getV1InvoicesIdLines"),
      /** The invoice as PDF bytes. */
      downloadPdf: (id: string, options?: RequestOptions): Promise<Uint8Array> => t.bytes("getV1InvoicesIdPdf", id, options),
    };
    this.invoiceItems = {
      create: one<G.PostV1InvoiceitemsParams, G.Invoiceitem>("postV1Invoiceitems"),
      retrieve: byId<G.GetV1InvoiceitemsIdParams, G.Invoiceitem>("getV1InvoiceitemsId"),
      list: list<G.GetV1InvoiceitemsParams, G.Invoiceitem>("getV1Invoiceitems"),
    };
    this.products = {
      create: one<G.PostV1ProductsParams, G.Product>("postV1Products"),
      retrieve: byId<G.GetV1ProductsIdParams, G.Product>("getV1ProductsId"),
      update: byId<G.PostV1ProductsIdParams, G.Product>("postV1ProductsId"),
      delete: byId<G.DeleteV1ProductsIdParams, G.Deleted>("deleteV1ProductsId"),
      list: list<G.GetV1ProductsParams, G.Product>("getV1Products"),
    };
    this.prices = {
      create: one<G.PostV1PricesParams, G.Price>("postV1Prices"),
      retrieve: byId<G.GetV1PricesIdParams, G.Price>("getV1PricesId"),
      update: byId<G.PostV1PricesIdParams, G.Price>("postV1PricesId"),
      list: list<G.GetV1PricesParams, G.Price>("getV1Prices"),
    };
    this.taxRates = {
      create: one<G.PostV1TaxRatesParams, G.TaxRate>("postV1TaxRates"),
      retrieve: byId<G.GetV1TaxRatesIdParams, G.TaxRate>("getV1TaxRatesId"),
      update: byId<G.PostV1TaxRatesIdParams, G.TaxRate>("postV1TaxRatesId"),
      list: list<G.GetV1TaxRatesParams, G.TaxRate>("getV1TaxRates"),
    };
    this.checkout = {
      sessions: {
        create: one<G.PostV1CheckoutSessionsParams, G.CheckoutSession>("postV1CheckoutSessions"),
        retrieve: byId<G.GetV1CheckoutSessionsIdParams, G.CheckoutSession>("getV1CheckoutSessionsId"),
        list: list<G.GetV1CheckoutSessionsParams, G.CheckoutSession>("getV1CheckoutSessions"),
        listLineItems: listOf<G.GetV1CheckoutSessionsIdLineItemsParams, G.Item>("getV1CheckoutSessionsIdLineItems"),
        expire: byId<G.PostV1CheckoutSessionsIdExpireParams, G.CheckoutSession>("postV1CheckoutSessionsIdExpire"),
      },
    };
    this.billingPortal = {
      sessions: {
        create: one<G.PostV1BillingPortalSessionsParams, G.BillingPortalSession>("postV1BillingPortalSessions"),
      },
      configurations: {
        create: one<G.PostV1BillingPortalConfigurationsParams, G.BillingPortalConfiguration>("postV1BillingPortalConfigurations"),
        retrieve: byId<G.GetV1BillingPortalConfigurationsIdParams, G.BillingPortalConfiguration>("getV1BillingPortalConfigurationsId"),
        update: byId<G.PostV1BillingPortalConfigurationsIdParams, G.BillingPortalConfiguration>("postV1BillingPortalConfigurationsId"),
        list: list<G.GetV1BillingPortalConfigurationsParams, G.BillingPortalConfiguration>("getV1BillingPortalConfigurations"),
      },
    };
    this.webhookEndpoints = {
      create: one<G.PostV1WebhookEndpointsParams, G.WebhookEndpoint>("postV1WebhookEndpoints"),
      retrieve: byId<G.GetV1WebhookEndpointsIdParams, G.WebhookEndpoint>("getV1WebhookEndpointsId"),
      update: byId<G.PostV1WebhookEndpointsIdParams, G.WebhookEndpoint>("postV1WebhookEndpointsId"),
      delete: byId<G.DeleteV1WebhookEndpointsIdParams, G.Deleted>("deleteV1WebhookEndpointsId"),
      list: list<G.GetV1WebhookEndpointsParams, G.WebhookEndpoint>("getV1WebhookEndpoints"),
      rollSecret: byId<G.PostV1WebhookEndpointsIdRollSecretParams, G.WebhookEndpoint>("postV1WebhookEndpointsIdRollSecret"),
      listAttempts: listOf<G.GetV1WebhookEndpointsIdAttemptsParams, G.WebhookAttempt>("getV1WebhookEndpointsIdAttempts"),
    };
    this.events = {
      retrieve: byId<G.GetV1EventsIdParams, WebhookEvent>("getV1EventsId"),
      list: list<G.GetV1EventsParams, WebhookEvent>("getV1Events"),
      resend: byId<G.PostV1EventsIdResendParams, WebhookEvent>("postV1EventsIdResend"),
      listAttempts: listOf<G.GetV1EventsIdAttemptsParams, G.WebhookAttempt>("getV1EventsIdAttempts"),
    };
    this.balance = {
      retrieve: (options?: RequestOptions): Promise<G.Balance> => t.call<G.Balance>("getV1Balance", undefined, undefined, options),
    };
    this.balanceTransactions = {
      retrieve: byId<G.GetV1BalanceTransactionsIdParams, G.BalanceTransaction>("getV1BalanceTransactionsId"),
      list: list<G.GetV1BalanceTransactionsParams, G.BalanceTransaction>("getV1BalanceTransactions"),
    };
    this.payouts = {
      retrieve: byId<G.GetV1PayoutsIdParams, G.Payout>("getV1PayoutsId"),
      list: list<G.GetV1PayoutsParams, G.Payout>("getV1Payouts"),
    };
    this.testHelpers = {
      testClocks: {
        create: one<G.PostV1TestHelpersTestClocksParams, G.TestHelpersTestClock>("postV1TestHelpersTestClocks"),
        retrieve: byId<G.GetV1TestHelpersTestClocksIdParams, G.TestHelpersTestClock>("getV1TestHelpersTestClocksId"),
        delete: byId<G.DeleteV1TestHelpersTestClocksIdParams, G.Deleted>("deleteV1TestHelpersTestClocksId"),
        list: list<G.GetV1TestHelpersTestClocksParams, G.TestHelpersTestClock>("getV1TestHelpersTestClocks"),
        advance: byId<G.PostV1TestHelpersTestClocksIdAdvanceParams, G.TestHelpersTestClock>("postV1TestHelpersTestClocksIdAdvance"),
      },
    };
  }
}

export default CalmonyPay;
