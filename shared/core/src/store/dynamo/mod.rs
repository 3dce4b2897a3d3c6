//! The DynamoDB adapter: one table, every write one conditional `TransactWriteItems`.
//!
//! | item | pk | sk | index attributes |
//! |---|---|---|---|
//! | request/grant | `GRANT#<id>` | `GRANT` | `requester_key`+`created_at`; `pending_target`+`created_at` while pending or an extension waits for reviewers; `due_shard`+`due_at` while open |
//! | audit record | `GRANT#<id>` | `AUDIT#<seq, 10 digits>` | `audit_day`+`audit_key` |
//! | revocation | `ROLE#<role ARN>` | `REVOKED#<grant id>` | |
//! | idempotency | `IDEM#<key>#<caller>` | `IDEM` | `expires_at` is the table's TTL attribute |
//! | open slot | `OPEN#<target>#<requester>` | `OPEN` | held while the requester's grant for the target is open |
//! | revoked role | `ROLES` | `ROLE#<role ARN>` | ledger `version` (bumped with every entry), revoker, and the `applied_marker`/`applied_version` of the policy last put |
//! | checkpoint | `CHECKPOINTS` | `PERIOD#<start, 12 digits>` | the sweeper's signed count and digest of a closed period's records |
//! | activity | `ACTIVITY#<grant id>#<shard 0-7>` | `EVENT#<time, 12 digits>#<eventID>` | what a grant's sessions did, one item per CloudTrail event |
//! | activity count | `ACTIVITY#<grant id>#<shard 0-7>` | `COUNT` | events `stored` in the shard (up to the cap) and counted `over_cap` |
//! | Slack link code | `SLACKCODE#<digest>` | `ITEM` | the Slack user a one-time code was given to; `expires_at` |
//! | Slack link | `SLACKLINK#<team>#<user>` | `ITEM` | the person, signed by intake |
//! | Slack handoff | `SLACKVIEW#<digest>` | `ITEM` | a click Slack may not decide, handed to the web page: the request and the linked person (only the token's SHA-256 is kept); `expires_at` |
//! | seen groups | `SEEN#<sub>` | `ITEM` | the groups of a linked person's last authenticated call (written on linking, then when changed or 5 minutes old), signed by intake |
//! | Slack replay | `SLACKREPLAY#<digest>` | `ITEM` | an interaction signature already handled; `expires_at` |
//! | Slack message | `SLACKMSG#<grant id>` | `ITEM` | the channel and `ts` of a request's message and the grant version it shows |
//! | unattributed event | `UNATTRIBUTED#<day>#<shard 0-7>` | `EVENT#<time, 12 digits>#<eventID>` | a `/jit/` role's event no grant accounts for, and why |

mod activity;
mod calls;
mod errors;
mod import;
mod layout;
mod ledger;
mod slack;
mod store;
mod trust;

use aws_sdk_dynamodb::Client;

use calls::*;
use errors::*;
use layout::*;
pub use layout::{IndexLayout, StreamImage, TableLayout};
pub use slack::{PostedMessage, Signed};

/// The grants, audit trail and revocation ledger in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store over `table`, using `client` (built once per Lambda instance).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}
