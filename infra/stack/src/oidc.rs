//! A small OpenID provider for the local stack: an RSA signing key kept under the target
//! directory, the discovery document and key set, and tokens for the demo people; and the JWT
//! check API Gateway's authorizer makes, against the provider's published key set.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jit_core::identity::gateway_form;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};

/// Why the provider could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("the local OpenID provider's key at `{path}`: {why}")]
pub struct OidcError {
    path: String,
    why: String,
}

/// The local identity provider.
pub struct Provider {
    issuer: String,
    audience: String,
    signing: EncodingKey,
    kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// A person to mint a token for.
#[derive(Debug, Clone)]
pub struct Person {
    /// The `sub` claim.
    pub sub: String,
    /// The groups, as the `groups` claim's array.
    pub groups: Vec<String>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Provider {
    /// The provider for `issuer` (its URL) and `audience`, signing with the key stored at
    /// `key_path` (PKCS#8 DER), made once and kept so tokens outlive a restart.
    pub fn load_or_create(
        key_path: &Path,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, OidcError> {
        let fail = |why: String| OidcError {
            path: key_path.display().to_string(),
            why,
        };
        let key = match std::fs::read(key_path) {
            Ok(der) => KeyPair::from_pkcs8(&der).map_err(|e| fail(e.to_string()))?,
            Err(_) => {
                let key = KeyPair::generate(KeySize::Rsa2048).map_err(|e| fail(e.to_string()))?;
                let der = key.as_der().map_err(|e| fail(e.to_string()))?;
                if let Some(dir) = key_path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
                }
                write_private(key_path, der.as_ref()).map_err(|e| fail(e.to_string()))?;
                key
            }
        };
        let der = key.as_der().map_err(|e| fail(e.to_string()))?;
        let signing = EncodingKey::from_rsa_pem(pkcs8_pem(der.as_ref()).as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        let public = key.public_key();
        let n = public.modulus().big_endian_without_leading_zero().to_vec();
        let e = public.exponent().big_endian_without_leading_zero().to_vec();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n);
        let kid = b64(digest.as_ref().get(..8).unwrap_or_default());
        Ok(Self {
            issuer: issuer.into(),
            audience: audience.into(),
            signing,
            kid,
            n,
            e,
        })
    }

    /// The issuer URL (the `iss` of every token).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience every token is for.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The key id its tokens name.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A signed ID token for `person`, valid `ttl_secs` from `now` (unix seconds).
    pub fn mint(&self, person: &Person, now: i64, ttl_secs: i64) -> String {
        let claims = json!({
            "iss": self.issuer,
            "aud": self.audience,
            "sub": person.sub,
            "email": format!("{}@example.com", person.sub),
            "groups": person.groups,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_secs,
        });
        self.sign(&self.kid, &claims)
    }

    /// Signs any claims with the provider's key, RS256, naming key `kid` (tests use it to
    /// forge variations).
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        // Signing JSON with a well-formed key cannot fail; an empty token would be refused.
        jsonwebtoken::encode(&header, claims, &self.signing).unwrap_or_default()
    }

    /// The OpenID discovery document.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.issuer),
            "authorization_endpoint": format!("{}/authorize", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "device_authorization_endpoint": format!("{}/device_authorization", self.issuer),
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:device_code"
            ],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "claims_supported": ["sub", "email", "groups", "aud", "iss", "exp", "iat"],
        })
    }

    /// The key set, as `jwks_uri` serves it.
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64(&self.n),
            "e": b64(&self.e),
        }]})
    }
}

#[cfg(unix)]
/// A PKCS#8 DER key as PEM, the form `jsonwebtoken` reads.
fn pkcs8_pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

/// A token with header `header` and no signature at all (`alg: none` and the like), which
/// every check must refuse.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Why the authorizer refused a token; API Gateway answers 401 to each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No token in the identity source.
    #[error("no token")]
    Missing,
    /// Not a JWT, or a part does not decode.
    #[error("the token is malformed")]
    Malformed,
    /// The key id is not in the key set, or the algorithm is not RSA.
    #[error("the token is not signed by a known key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `iss` is not the configured issuer.
    #[error("the token's issuer is not trusted")]
    WrongIssuer,
    /// Neither `aud` nor `client_id` names a configured audience.
    #[error("the token is not for this API")]
    WrongAudience,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` or `iat` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
}

/// API Gateway's JWT authorizer: issuer, audiences and the issuer's key set.
#[derive(Debug, Clone)]
pub struct Authorizer {
    issuer: String,
    audiences: Vec<String>,
    keys: Vec<(String, DecodingKey)>,
}

fn decode(part: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| Rejection::Malformed)
}

impl Authorizer {
    /// An authorizer for tokens from `issuer` for `audiences`, checked against `jwks`.
    pub fn new(issuer: &str, audiences: &[&str], jwks: &Value) -> Self {
        let keys = jwks["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter(|k| k["kty"] == "RSA")
                    .filter_map(|k| {
                        let n = k["n"].as_str()?;
                        let e = k["e"].as_str()?;
                        let key = DecodingKey::from_rsa_components(n, e).ok()?;
                        Some((k["kid"].as_str().unwrap_or_default().to_owned(), key))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            issuer: issuer.to_owned(),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            keys,
        }
    }

    /// Checks the identity source's value (`Bearer <jwt>` or the bare token) at `now`, as
    /// API Gateway does: RSA signature by a key of the set, issuer, audience (`aud` or
    /// `client_id`), `exp`, `nbf` and `iat`. The claims on success.
    pub fn check(&self, value: Option<&str>, now: i64) -> Result<Map<String, Value>, Rejection> {
        let value = value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(Rejection::Missing)?;
        let token = value
            .strip_prefix("Bearer")
            .or_else(|| value.strip_prefix("bearer"))
            .map_or(value, str::trim);
        if token.is_empty() {
            return Err(Rejection::Missing);
        }
        // The header first, as API Gateway reads it: RS256 by a key of the set.
        let header = token.split('.').next().ok_or(Rejection::Malformed)?;
        let header: Value =
            serde_json::from_slice(&decode(header)?).map_err(|_| Rejection::Malformed)?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(Rejection::UnknownKey);
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| k == kid)
            .ok_or(Rejection::UnknownKey)?;
        // The signature and the shape by `jsonwebtoken`; the claims by API Gateway's own
        // rules below, at `now` rather than the machine's clock.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims: Map<String, Value> = jsonwebtoken::decode(token, key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => Rejection::BadSignature,
                _ => Rejection::Malformed,
            })?
            .claims;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(Rejection::WrongIssuer);
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => claims
                .get("client_id")
                .and_then(Value::as_str)
                .into_iter()
                .collect(),
        };
        if !audiences
            .iter()
            .any(|a| self.audiences.iter().any(|w| w == a))
        {
            return Err(Rejection::WrongAudience);
        }
        let time = |name: &str| claims.get(name).and_then(Value::as_i64);
        match time("exp") {
            Some(exp) if exp > now => {}
            _ => return Err(Rejection::Expired),
        }
        if time("nbf").is_some_and(|t| t > now) || time("iat").is_some_and(|t| t > now) {
            return Err(Rejection::NotYetValid);
        }
        Ok(claims)
    }
}

/// Claims as API Gateway passes them to the function: every value a string, arrays in its
/// bracketed `[a b]` form, objects as JSON text.
pub fn gateway_claims(claims: &Map<String, Value>) -> Map<String, Value> {
    claims
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(gateway_form(v))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Provider {
        let path = jit_local::target_dir().join("jit-stack-test/oidc-key.der");
        Provider::load_or_create(&path, "http://127.0.0.1:1", "jit-access").unwrap()
    }

    #[test]
    fn tokens_are_checked_as_api_gateway_checks_them() {
        let p = provider();
        let auth = Authorizer::new(p.issuer(), &["jit-access"], &p.jwks());
        let alice = Person {
            sub: "alice".into(),
            groups: vec!["sre".into(), "oncall".into()],
        };
        let now = 1_800_000_000;
        let token = p.mint(&alice, now, 3600);
        let claims = auth.check(Some(&format!("Bearer {token}")), now).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(auth.check(Some(&token), now).unwrap()["sub"], "alice");
        let passed = gateway_claims(&claims);
        assert_eq!(passed["groups"], "[sre oncall]");
        assert_eq!(passed["exp"], (now + 3600).to_string());

        let kid = p.jwks()["keys"][0]["kid"].as_str().unwrap().to_owned();
        assert_eq!(kid, p.kid());
        let base = json!({"iss": p.issuer(), "aud": "jit-access", "sub": "x", "exp": now + 60});
        let with = |k: &str, v: Value| {
            let mut c = base.clone();
            c[k] = v;
            p.sign(&kid, &c)
        };
        let mut tampered = token.clone();
        tampered.replace_range(tampered.len() - 5.., "AAAAA");
        let cases = [
            (None, Rejection::Missing),
            (Some("Bearer ".to_owned()), Rejection::Missing),
            (
                Some("Bearer not.a.jwt.at-all".to_owned()),
                Rejection::Malformed,
            ),
            (Some(tampered), Rejection::BadSignature),
            (Some(p.sign("someone-else", &base)), Rejection::UnknownKey),
            (
                Some(unsigned(&json!({"alg": "none", "kid": kid}), &base)),
                Rejection::UnknownKey,
            ),
            (
                Some(with("iss", json!("https://evil.example"))),
                Rejection::WrongIssuer,
            ),
            (
                Some(with("aud", json!("another-api"))),
                Rejection::WrongAudience,
            ),
            (Some(with("exp", json!(now))), Rejection::Expired),
            (Some(with("nbf", json!(now + 30))), Rejection::NotYetValid),
        ];
        for (value, expected) in cases {
            assert_eq!(
                auth.check(value.as_deref(), now).map(|_| ()),
                Err(expected.clone()),
                "{value:?}"
            );
        }
        // An audience list and client_id both count, as API Gateway reads them.
        assert!(
            auth.check(Some(&with("aud", json!(["x", "jit-access"]))), now)
                .is_ok()
        );
        let mut by_client = base.clone();
        by_client.as_object_mut().unwrap().remove("aud");
        by_client["client_id"] = json!("jit-access");
        assert!(auth.check(Some(&p.sign(&kid, &by_client)), now).is_ok());
        // The key is kept: a second provider signs tokens the first one's key set accepts.
        let again = provider();
        assert!(auth.check(Some(&again.mint(&alice, now, 60)), now).is_ok());
    }
}
