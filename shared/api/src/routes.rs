//! The API's routes: one enum for what every function matches and every client calls.

/// One route of the API, with its `{id}` or `{file}` when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `GET /`: the web page.
    WebPage,
    /// `GET /web/{file}`: the page's script, styles and sign-in settings.
    WebFile(&'a str),
    /// `POST /requests`.
    CreateRequest,
    /// `GET /requests`.
    ListRequests,
    /// `GET /requests/{id}`.
    GetRequest(&'a str),
    /// `GET /requests/{id}/audit`.
    RequestTrail(&'a str),
    /// `GET /requests/{id}/activity`.
    RequestActivity(&'a str),
    /// `POST /requests/{id}/cancel`.
    Cancel(&'a str),
    /// `POST /requests/{id}/reviews`.
    Review(&'a str),
    /// `POST /grants/{id}/post-review`.
    PostReview(&'a str),
    /// `POST /grants/{id}/credentials`.
    Credentials(&'a str),
    /// `POST /grants/{id}/console`.
    Console(&'a str),
    /// `POST /grants/{id}/revoke`.
    Revoke(&'a str),
    /// `GET /targets`.
    Targets,
    /// `GET /audit`.
    Audit,
    /// `GET /audit/unattributed`: the calls no grant accounts for, one day at a time.
    Unattributed,
    /// `POST /grants/{id}/extend`.
    Extend(&'a str),
    /// `POST /bundles`: one request of several targets.
    CreateBundle,
    /// `GET /bundles/{id}`: a request of several targets, its items together.
    GetBundle(&'a str),
    /// `POST /bundles/{id}/reviews`: one review of every item the caller may decide.
    ReviewBundle(&'a str),
    /// `POST /bundles/{id}/revoke`: every active item revoked.
    RevokeBundle(&'a str),
    /// `POST /slack/interactions`: Slack's signed clicks and slash commands (no JWT).
    SlackInteractions,
    /// `POST /slack/links`: links the Slack user a one-time code was given to.
    LinkSlack,
    /// `POST /slack/handoffs`: opens, once, a click Slack handed to the web page.
    OpenHandoff,
}

impl<'a> Route<'a> {
    /// Every route's API Gateway route key, as `template.yaml` and `openapi.yaml` name them.
    pub const KEYS: [&'static str; 24] = [
        "GET /",
        "GET /web/{file}",
        "POST /requests",
        "GET /requests",
        "GET /requests/{id}",
        "GET /requests/{id}/audit",
        "POST /requests/{id}/cancel",
        "POST /requests/{id}/reviews",
        "POST /grants/{id}/post-review",
        "POST /grants/{id}/credentials",
        "POST /grants/{id}/console",
        "POST /grants/{id}/revoke",
        "GET /targets",
        "GET /audit",
        "GET /requests/{id}/activity",
        "GET /audit/unattributed",
        "POST /grants/{id}/extend",
        "GET /bundles/{id}",
        "POST /bundles/{id}/reviews",
        "POST /bundles/{id}/revoke",
        "POST /bundles",
        "POST /slack/interactions",
        "POST /slack/links",
        "POST /slack/handoffs",
    ];

    /// The route key API Gateway matches (`POST /requests/{id}/reviews`).
    pub fn key(&self) -> &'static str {
        let index = match self {
            Self::WebPage => 0,
            Self::WebFile(_) => 1,
            Self::CreateRequest => 2,
            Self::ListRequests => 3,
            Self::GetRequest(_) => 4,
            Self::RequestTrail(_) => 5,
            Self::Cancel(_) => 6,
            Self::Review(_) => 7,
            Self::PostReview(_) => 8,
            Self::Credentials(_) => 9,
            Self::Console(_) => 10,
            Self::Revoke(_) => 11,
            Self::Targets => 12,
            Self::Audit => 13,
            Self::RequestActivity(_) => 14,
            Self::Unattributed => 15,
            Self::Extend(_) => 16,
            Self::GetBundle(_) => 17,
            Self::ReviewBundle(_) => 18,
            Self::RevokeBundle(_) => 19,
            Self::CreateBundle => 20,
            Self::SlackInteractions => 21,
            Self::LinkSlack => 22,
            Self::OpenHandoff => 23,
        };
        Self::KEYS.get(index).copied().unwrap_or("GET /")
    }

    /// The method.
    pub fn method(&self) -> &'static str {
        self.key().split_once(' ').map_or("GET", |(m, _)| m)
    }

    /// The path, with the id or file put in.
    pub fn path(&self) -> String {
        let template = self.key().split_once(' ').map_or("/", |(_, p)| p);
        match self.parameter() {
            Some(value) => template.replace("{id}", value).replace("{file}", value),
            None => template.to_owned(),
        }
    }

    fn parameter(&self) -> Option<&'a str> {
        match *self {
            Self::WebFile(p)
            | Self::GetRequest(p)
            | Self::RequestTrail(p)
            | Self::RequestActivity(p)
            | Self::Cancel(p)
            | Self::Review(p)
            | Self::PostReview(p)
            | Self::Credentials(p)
            | Self::Console(p)
            | Self::Revoke(p)
            | Self::Extend(p)
            | Self::GetBundle(p)
            | Self::ReviewBundle(p)
            | Self::RevokeBundle(p) => Some(p),
            Self::WebPage
            | Self::CreateRequest
            | Self::CreateBundle
            | Self::ListRequests
            | Self::Targets
            | Self::Audit
            | Self::Unattributed
            | Self::SlackInteractions
            | Self::LinkSlack
            | Self::OpenHandoff => None,
        }
    }

    /// The route of route key `key` (as API Gateway names the route it matched) with the path
    /// parameter it extracted, if `key` is one of the API's and has what it needs.
    pub fn of_key(key: &str, parameter: Option<&'a str>) -> Option<Self> {
        let with = |make: fn(&'a str) -> Self| parameter.map(make);
        match key {
            "GET /" => Some(Self::WebPage),
            "GET /web/{file}" => with(Self::WebFile),
            "POST /requests" => Some(Self::CreateRequest),
            "GET /requests" => Some(Self::ListRequests),
            "GET /requests/{id}" => with(Self::GetRequest),
            "GET /requests/{id}/audit" => with(Self::RequestTrail),
            "POST /requests/{id}/cancel" => with(Self::Cancel),
            "POST /requests/{id}/reviews" => with(Self::Review),
            "POST /grants/{id}/post-review" => with(Self::PostReview),
            "POST /grants/{id}/credentials" => with(Self::Credentials),
            "POST /grants/{id}/console" => with(Self::Console),
            "POST /grants/{id}/revoke" => with(Self::Revoke),
            "GET /targets" => Some(Self::Targets),
            "GET /audit" => Some(Self::Audit),
            "GET /requests/{id}/activity" => with(Self::RequestActivity),
            "GET /audit/unattributed" => Some(Self::Unattributed),
            "POST /grants/{id}/extend" => with(Self::Extend),
            "POST /bundles" => Some(Self::CreateBundle),
            "GET /bundles/{id}" => with(Self::GetBundle),
            "POST /bundles/{id}/reviews" => with(Self::ReviewBundle),
            "POST /bundles/{id}/revoke" => with(Self::RevokeBundle),
            "POST /slack/interactions" => Some(Self::SlackInteractions),
            "POST /slack/links" => Some(Self::LinkSlack),
            "POST /slack/handoffs" => Some(Self::OpenHandoff),
            _ => None,
        }
    }

    /// The route `method path` is, matching the path segment by segment (for callers without a
    /// gateway to name the route).
    pub fn of_path(method: &str, path: &'a str) -> Option<Self> {
        let segments: Vec<&'a str> = path.split('/').filter(|s| !s.is_empty()).collect();
        Self::KEYS.iter().find_map(|key| {
            let (route_method, template) = key.split_once(' ')?;
            let template: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
            if route_method != method || template.len() != segments.len() {
                return None;
            }
            let mut parameter = None;
            for (t, s) in template.iter().zip(&segments) {
                if t.starts_with('{') {
                    parameter = Some(*s);
                } else if t != s {
                    return None;
                }
            }
            Self::of_key(key, parameter)
        })
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn every_key_reads_back_as_its_route_by_key_and_by_path() {
        for key in Route::KEYS {
            let route = Route::of_key(key, Some("0190c0de-0000-7000-8000-000000000001"))
                .unwrap_or_else(|| panic!("{key}"));
            assert_eq!(route.key(), key);
            let path = route.path();
            assert_eq!(Route::of_path(route.method(), &path), Some(route), "{path}");
        }
        assert_eq!(Route::of_key("POST /requests/{id}/cancel", None), None);
        assert_eq!(Route::of_path("DELETE", "/requests"), None);
        assert_eq!(Route::of_path("GET", "/requests/a/b/c"), None);
        assert_eq!(
            Route::Review("r-1").path(),
            "/requests/r-1/reviews",
            "the id is put in"
        );
    }
}
