//! Black-box tests: the real server on an ephemeral port, driven over HTTP.
//!
//! One test binary (faster to link than one per file); each test gets its own server
//! and so its own state, and they run in parallel.

mod abuse;
mod account;
mod audit;
mod auth;
mod cache;
mod client;
mod cluster;
mod connections;
mod contract;
mod cookie;
mod errors;
mod fuzz;
mod helpers;
mod hygiene;
mod keys;
mod mfa;
mod notifications;
mod oauth;
mod openapi;
mod ops;
mod phone;
mod production;
mod redis;
mod replicas;
mod sentinel;
mod sessions;
mod throttle;
mod todos;
