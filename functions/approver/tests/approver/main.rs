//! The integration tests of this crate, as one test binary (on two cores every extra test
//! binary links the AWS SDK again).
// Tests may unwrap and index: a panic is how a test fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

mod extend;
mod oncall;
mod reviews;
mod slack;
mod stream;
