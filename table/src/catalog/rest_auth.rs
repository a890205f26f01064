//! How requests to a REST catalog are authorised, as the Java and PyIceberg clients do it: a
//! fixed bearer `token`, or OAuth2 client credentials (`credential = "<client_id>:<secret>"`)
//! exchanged at the token endpoint (`oauth2-server-uri`, else `<uri>/v1/oauth/tokens`) for a
//! short-lived token, renewed before it expires and once more when the server answers 401.
//! Secrets and tokens are never logged.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::rest::encode_segment;
use crate::{Error, Result};

/// The REST properties this client understands (the names Java's and PyIceberg's use).
pub const REST_PROPERTIES: &[&str] = &[
    "credential",
    "oauth2-server-uri",
    "scope",
    "token",
    "header.<name>",
    "rest.sigv4-enabled",
    "rest.signing-region",
    "rest.signing-name",
];

/// The SigV4 signing scope the properties ask for: `Some((region, service))` when
/// `rest.sigv4-enabled` is true (the region from `rest.signing-region`, else `AWS_REGION`; the
/// service from `rest.signing-name`, else `execute-api`, as the Java client defaults).
pub fn sigv4_scope(properties: &BTreeMap<String, String>) -> Result<Option<(String, String)>> {
    if properties.get("rest.sigv4-enabled").map(String::as_str) != Some("true") {
        return Ok(None);
    }
    let region = properties
        .get("rest.signing-region")
        .cloned()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .ok_or_else(|| {
            Error::Config(
                "catalog.rest: \"rest.sigv4-enabled\" = \"true\" needs a region: set \"rest.signing-region\" (or AWS_REGION)"
                    .into(),
            )
        })?;
    let service = properties.get("rest.signing-name").cloned().unwrap_or_else(|| "execute-api".into());
    Ok(Some((region, service)))
}

/// A token is renewed once this share of its lifetime has passed.
const RENEW_AT: f64 = 0.8;

/// How requests are authorised.
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// A fixed token: a 401 means it is wrong or expired, which only the user can fix.
    Bearer(String),
    /// Tokens from client credentials, renewed as they expire.
    OAuth2(Box<OAuth2>),
}

/// OAuth2 client credentials and the token they were last exchanged for (shared by the REST
/// catalog and the writer's schema registry client).
pub struct OAuth2 {
    endpoint: String,
    client_id: String,
    client_secret: String,
    scope: String,
    /// The settings a refusal points at, e.g. `catalog.rest.credential`.
    settings: &'static str,
    token: Mutex<Option<Token>>,
}

struct Token {
    access: String,
    /// `None`: the server gave no lifetime; renewed only when refused.
    renew_after: Option<Instant>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl Auth {
    /// The authorisation `properties` (validated: see [`validate_rest_properties`]) ask for,
    /// for a catalog at `root` (`<uri>/v1`).
    pub fn from_properties(properties: &BTreeMap<String, String>, token: Option<&str>, root: &str) -> Auth {
        if let Some(credential) = properties.get("credential") {
            let (client_id, client_secret) = credential.split_once(':').unwrap_or(("", credential));
            let endpoint =
                properties.get("oauth2-server-uri").cloned().unwrap_or_else(|| format!("{root}/oauth/tokens"));
            let scope = properties.get("scope").cloned().unwrap_or_else(|| "catalog".into());
            let settings = "catalog.rest.credential (\"<client_id>:<client_secret>\") and catalog.rest.scope";
            return Auth::OAuth2(Box::new(OAuth2::new(endpoint, client_id, client_secret, scope, settings)));
        }
        match properties.get("token").map(String::as_str).or(token) {
            Some(token) => Auth::Bearer(token.to_string()),
            None => Auth::None,
        }
    }

    /// The `Authorization` header value for the next request (`None`: none is sent).
    pub async fn header(&self, http: &reqwest::Client) -> Result<Option<String>> {
        match self {
            Auth::None => Ok(None),
            Auth::Bearer(token) => Ok(Some(format!("Bearer {token}"))),
            Auth::OAuth2(oauth) => Ok(Some(format!("Bearer {}", oauth.token(http).await?))),
        }
    }

    /// The server refused `header`: true when a new token is worth one more try.
    pub async fn refused(&self, header: Option<&str>) -> bool {
        match self {
            Auth::OAuth2(oauth) => {
                if let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) {
                    oauth.forget(token).await;
                }
                true
            }
            _ => false,
        }
    }

    /// The setting a refusal points at.
    pub fn setting(&self) -> &'static str {
        match self {
            Auth::None => "catalog.rest.credential or catalog.rest.token (none is set)",
            Auth::Bearer(_) => "catalog.rest.token (a fixed token: is it expired?)",
            Auth::OAuth2(_) => "catalog.rest.credential and catalog.rest.scope",
        }
    }
}

impl OAuth2 {
    /// Client credentials for `endpoint`; `settings` names the config keys a refusal points at.
    pub fn new(endpoint: String, client_id: &str, client_secret: &str, scope: String, settings: &'static str) -> Self {
        OAuth2 {
            endpoint,
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            scope,
            settings,
            token: Mutex::new(None),
        }
    }

    /// The server refused `access`: the next [`OAuth2::token`] obtains a new one (unless another
    /// request already did).
    pub async fn forget(&self, access: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.access == access) {
            *cached = None;
        }
    }

    /// A token: the cached one until it is due for renewal, else a new one.
    pub async fn token(&self, http: &reqwest::Client) -> Result<String> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && token.renew_after.is_none_or(|at| Instant::now() < at)
        {
            return Ok(token.access.clone());
        }
        let token = self.exchange(http).await?;
        let access = token.access.clone();
        *cached = Some(token);
        Ok(access)
    }

    /// Client credentials → a token (RFC 6749 §4.4).
    async fn exchange(&self, http: &reqwest::Client) -> Result<Token> {
        let context = format!("get an OAuth2 token from {}", self.endpoint);
        let mut form = format!("grant_type=client_credentials&scope={}", encode_segment(&self.scope));
        if !self.client_id.is_empty() {
            form.push_str(&format!("&client_id={}", encode_segment(&self.client_id)));
        }
        form.push_str(&format!("&client_secret={}", encode_segment(&self.client_secret)));
        let asked = Instant::now();
        let response = http
            .post(&self.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| rest_error(&context, None, e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| rest_error(&context, Some(status), e.to_string()))?;
        if matches!(status, 400 | 401 | 403) {
            // RFC 6749 §5.2: {"error": "invalid_client", "error_description": …}
            let reason: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
            let reason = reason
                .as_ref()
                .and_then(|v| v.get("error_description").or(v.get("error")))
                .and_then(|v| v.as_str())
                .unwrap_or("refused");
            return Err(Error::Config(format!(
                "{} refused our OAuth2 client credentials ({status}: {reason}); check {}",
                self.endpoint, self.settings
            )));
        }
        if status != 200 {
            return Err(rest_error(&context, Some(status), String::from_utf8_lossy(&body).chars().take(200).collect()));
        }
        let answer: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| rest_error(&context, Some(status), format!("not a token response: {e}")))?;
        let renew_after = answer.expires_in.map(|seconds| asked + Duration::from_secs_f64(seconds as f64 * RENEW_AT));
        tracing::debug!(endpoint = %self.endpoint, expires_in = answer.expires_in, "OAuth2 token obtained");
        Ok(Token { access: answer.access_token, renew_after })
    }
}

fn rest_error(context: &str, status: Option<u16>, message: String) -> Error {
    Error::Rest { context: context.to_string(), status, message }
}

/// Extra headers from `header.<name>` properties.
pub fn extra_headers(properties: &BTreeMap<String, String>) -> Vec<(String, String)> {
    properties.iter().filter_map(|(k, v)| Some((k.strip_prefix("header.")?.to_string(), v.clone()))).collect()
}

/// Every key is one this client understands, and `credential` and `token` are not both set.
pub fn validate_rest_properties(properties: &BTreeMap<String, String>, token: Option<&str>) -> Result<()> {
    for key in properties.keys() {
        let known =
            REST_PROPERTIES.contains(&key.as_str()) || key.strip_prefix("header.").is_some_and(|name| !name.is_empty());
        if !known {
            return Err(Error::Config(format!(
                "catalog.rest.{key} is not a REST property Icefall understands; use one of {}",
                REST_PROPERTIES.join(", ")
            )));
        }
    }
    let tokens = usize::from(properties.contains_key("token")) + usize::from(token.is_some());
    if properties.contains_key("credential") && tokens > 0 {
        return Err(Error::Config(
            "catalog.rest.credential and a token are both set: keep the credential (tokens are then obtained and \
             renewed) or the fixed token, not both"
                .into(),
        ));
    }
    if let Some(value) = properties.get("rest.sigv4-enabled")
        && !matches!(value.as_str(), "true" | "false")
    {
        return Err(Error::Config(format!(
            "catalog.rest.\"rest.sigv4-enabled\" = {value:?}: use \"true\" or \"false\""
        )));
    }
    if properties.get("rest.sigv4-enabled").map(String::as_str) == Some("true")
        && (tokens > 0 || properties.contains_key("credential"))
    {
        return Err(Error::Config(
            "catalog.rest: SigV4 signing and a credential or token are both set: AWS catalogs take SigV4 alone".into(),
        ));
    }
    if tokens > 1 {
        return Err(Error::Config("catalog.token and catalog.rest.token are both set: keep one".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn properties_are_checked_by_name() {
        assert!(validate_rest_properties(&props(&[("credential", "a:b"), ("header.X-Tenant", "t")]), None).is_ok());
        let unknown =
            validate_rest_properties(&props(&[("credentials", "a:b")]), None).expect_err("unknown key").to_string();
        assert!(unknown.contains("catalog.rest.credentials") && unknown.contains("credential,"), "{unknown}");
        assert!(validate_rest_properties(&props(&[("credential", "a:b")]), Some("t")).is_err(), "both");
        assert_eq!(
            extra_headers(&props(&[("header.X-Tenant", "t"), ("scope", "s")])),
            [("X-Tenant".into(), "t".into())]
        );
    }

    #[test]
    fn a_credential_without_a_client_id_is_the_secret_and_the_endpoint_defaults_to_the_catalogs() {
        let Auth::OAuth2(oauth) = Auth::from_properties(&props(&[("credential", "s3cr:et")]), None, "http://h/v1")
        else {
            panic!("a credential means OAuth2");
        };
        assert_eq!((oauth.client_id.as_str(), oauth.client_secret.as_str()), ("s3cr", "et"));
        assert_eq!((oauth.endpoint.as_str(), oauth.scope.as_str()), ("http://h/v1/oauth/tokens", "catalog"));
        let Auth::OAuth2(oauth) = Auth::from_properties(&props(&[("credential", "secret")]), None, "http://h/v1")
        else {
            panic!("a credential means OAuth2");
        };
        assert_eq!((oauth.client_id.as_str(), oauth.client_secret.as_str()), ("", "secret"));
        assert!(matches!(Auth::from_properties(&BTreeMap::new(), Some("t"), "r"), Auth::Bearer(t) if t == "t"));
    }
}
