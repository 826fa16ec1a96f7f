//! The one integration-test binary: real databases, and (from the API on) the real server.

mod access;
mod api;
mod cli;
mod live;
mod network;
mod nodes;
mod projections;
mod store;
mod support;
