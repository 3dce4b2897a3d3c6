//! The core of just-in-time AWS access: the domain (values, grants and their lifecycle), the
//! hash-chained audit trail, the injected clock, and the grant store with its DynamoDB and
//! in-memory adapters. No Lambda code lives here; the functions wire these parts together.

pub mod activity;
pub mod archive;
pub mod cases;
pub mod cause;
pub mod clock;
pub mod domain;
pub mod identity;
pub mod naming;
pub mod ocsf;
pub mod policy;
pub mod report;
pub mod revocation;
pub mod slack;
pub mod store;
pub mod transition;
pub mod trust;
