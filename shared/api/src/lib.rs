//! The broker's HTTP API in one place: every body a route takes or answers with as a type
//! ([`types`]), the routes ([`Route`]), and a typed client ([`Client`], with the `client`
//! feature). The functions answer with these types, and the command, the local stack's demo,
//! the end-to-end tests and the benchmarks read them, so a renamed field fails to compile
//! rather than at run time. A test holds the types and `openapi.yaml` to each other.

mod pacing;
mod routes;
pub mod types;

#[cfg(feature = "client")]
mod client;

#[cfg(feature = "client")]
pub use client::{Answer, ApiError, ApiResult, Client};
pub use pacing::{poll_interval, throttled_wait};
pub use routes::Route;
pub use types::*;
