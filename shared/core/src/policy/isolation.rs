//! The broker out of reach of the sessions it grants: a target whose role is in the broker's
//! own account would hand out sessions that can change the broker itself (its functions,
//! table, keys, schedule), and a target in another account with no revoker role could not
//! have its sessions cut (IAM addresses roles by name within the caller's account). Both are
//! refused unless the deployment opts in to targets in its own account, whose permissions
//! boundary then denies every broker resource.

use crate::domain::RoleArn;

/// The broker's own account (`JIT_BROKER_ACCOUNT`, the template's `AWS::AccountId`).
pub const BROKER_ACCOUNT_ENV: &str = "JIT_BROKER_ACCOUNT";

/// `true` when the deployment opts in to targets in the broker's account
/// (`JIT_TARGETS_IN_BROKER_ACCOUNT`, the template parameter `TargetsInBrokerAccount`).
pub const TARGETS_IN_BROKER_ACCOUNT_ENV: &str = "JIT_TARGETS_IN_BROKER_ACCOUNT";

/// Where the broker runs, and whether targets may share its account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Isolation {
    /// The broker's account, when known.
    pub broker_account: Option<String>,
    /// The deployment lets targets live in the broker's account (their boundary denies the
    /// broker's resources).
    pub targets_in_broker_account: bool,
}

impl Isolation {
    /// From the environment the template sets; a bad value says what is wrong.
    pub fn from_env() -> Result<Self, String> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let broker_account = get(BROKER_ACCOUNT_ENV);
        if let Some(a) = &broker_account
            && !is_account(a)
        {
            return Err(format!(
                "{BROKER_ACCOUNT_ENV} `{a}` is not a 12-digit AWS account id"
            ));
        }
        let targets_in_broker_account = match get(TARGETS_IN_BROKER_ACCOUNT_ENV).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!(
                    "{TARGETS_IN_BROKER_ACCOUNT_ENV} `{other}` must be `true` or `false`"
                ));
            }
        };
        Ok(Self {
            broker_account,
            targets_in_broker_account,
        })
    }

    /// Why sessions of `role` (whose policies change through `revoker`) would not be
    /// isolated from the broker, if so.
    pub fn problem(&self, role: &RoleArn, revoker: Option<&RoleArn>) -> Option<String> {
        let account = role.account().unwrap_or("(unknown)");
        let in_broker = self.broker_account.as_deref() == Some(account);
        if in_broker && !self.targets_in_broker_account {
            return Some(format!(
                "its role is in the broker's own account {account}, where a session it grants \
                 could change the broker; move the role to another account, or deploy with \
                 TargetsInBrokerAccount=true so the target boundary denies every broker resource"
            ));
        }
        if revoker.is_none() && !in_broker {
            let why = match &self.broker_account {
                Some(broker) => format!(
                    "its role is in account {account}, not the broker's ({broker}), and it names \
                     no revoker_role_arn"
                ),
                None => format!(
                    "its role (account {account}) names no revoker_role_arn, which only a \
                     target in the broker's own account may omit"
                ),
            };
            return Some(format!(
                "{why}: its sessions could not be cut; deploy infra/target-account.yaml in \
                 {account} with CreateRevoker=true and name its revoker role"
            ));
        }
        None
    }
}

fn is_account(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arn(s: &str) -> RoleArn {
        RoleArn::parse(s).unwrap()
    }

    #[test]
    fn only_isolated_targets_pass() {
        let broker = Isolation {
            broker_account: Some("111111111111".into()),
            targets_in_broker_account: false,
        };
        let opted_in = Isolation {
            targets_in_broker_account: true,
            ..broker.clone()
        };
        let unknown = Isolation::default();
        let own = arn("arn:aws:iam::111111111111:role/jit/admin");
        let other = arn("arn:aws:iam::222222222222:role/jit/admin");
        let revoker = arn("arn:aws:iam::222222222222:role/jit-revoker");
        let own_revoker = arn("arn:aws:iam::111111111111:role/jit-revoker");
        for (iso, role, rev, refused) in [
            (&broker, &other, Some(&revoker), None),
            (&broker, &other, None, Some("names no revoker_role_arn")),
            (&broker, &own, None, Some("the broker's own account")),
            (
                &broker,
                &own,
                Some(&own_revoker),
                Some("the broker's own account"),
            ),
            (&opted_in, &own, None, None),
            (&opted_in, &other, None, Some("names no revoker_role_arn")),
            (&unknown, &other, Some(&revoker), None),
            (
                &unknown,
                &own,
                None,
                Some("only a target in the broker's own account"),
            ),
        ] {
            let got = iso.problem(role, rev);
            match refused {
                None => assert_eq!(got, None, "{role} {rev:?}"),
                Some(part) => assert!(
                    got.as_deref().is_some_and(|g| g.contains(part)),
                    "{role} {rev:?}: {got:?}"
                ),
            }
        }
    }
}
