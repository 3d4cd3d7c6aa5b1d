//! End-to-end tests: a real redis-server, the real daemon binary, real HTTP. One binary, one
//! module per area (as svix-server does), sharing the harness.

#[path = "../harness/mod.rs"]
mod harness;

mod actors;
mod auth;
mod bank;
mod bank_refunds;
mod billing;
mod browser;
mod checkout;
mod config;
mod crash;
mod customers;
mod dashboard;
mod deferred_key_check;
mod docs;
mod gateway_errors;
mod griffin;
mod griffin_webhooks;
mod honoured;
mod idempotency;
mod isolation;
mod list_filters;
mod managed_redis;
mod merchant;
mod newcomer;
mod operations;
mod operator_view;
mod pagination;
mod params;
mod pay_by_bank;
mod payments;
mod portal;
mod rate_limit;
mod redis_refusals;
mod refunds;
mod resilience;
mod sandbox_access;
mod secrets_at_rest;
mod settlement;
mod slow_clients;
mod startup;
mod three_ds;
mod webhook_destinations;
mod webhooks;
