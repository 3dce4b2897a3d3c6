//! One module per subcommand that calls the API.

pub mod account;
pub mod activity;
pub mod cancel;
pub mod console;
pub mod extend;
pub mod ls;
pub mod report;
pub mod request;
pub mod review;
pub mod revoke;
pub mod session;
pub mod show;
pub mod slack;
pub mod targets;
