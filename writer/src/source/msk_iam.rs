//! Amazon MSK's IAM access control: SASL/OAUTHBEARER whose token is a SigV4-presigned
//! `kafka-cluster:Connect` request to `kafka.<region>.amazonaws.com`, base64url-encoded, as AWS's
//! `aws-msk-iam-sasl-signer` libraries make it. Credentials come from the usual AWS chain
//! (environment, profile, web identity, container and instance roles); librdkafka asks for a new
//! token before the last one expires.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use icefall_table::catalog::rest_sigv4::aws_context;
use rdkafka::client::OAuthToken;
use reqsign_aws_v4::{Credential, DefaultCredentialProvider, StaticCredentialProvider};
use reqsign_core::hash::{hex_hmac_sha256, hex_sha256, hmac_sha256};
use reqsign_core::{Context, ProvideCredential, ProvideCredentialDyn};

use crate::config::MskIamConfig;

/// How long a token is valid (the signers' own default).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);
const SERVICE: &str = "kafka-cluster";

/// Signs MSK IAM tokens for one region.
pub struct MskIamTokens {
    context: Context,
    credentials: Box<dyn ProvideCredentialDyn<Credential = Credential>>,
    region: String,
}

impl MskIamTokens {
    /// Tokens signed with credentials from the AWS chain.
    pub fn new(config: &MskIamConfig) -> Self {
        Self::with_provider(&config.region, DefaultCredentialProvider::new())
    }

    /// Tokens signed with fixed credentials (tests).
    pub fn with_static_credentials(region: &str, key_id: &str, secret: &str) -> Self {
        Self::with_provider(region, StaticCredentialProvider::new(key_id, secret))
    }

    fn with_provider(region: &str, provider: impl ProvideCredential<Credential = Credential>) -> Self {
        MskIamTokens {
            context: aws_context(reqwest::Client::new()),
            credentials: Box::new(provider),
            region: region.into(),
        }
    }

    /// A token and when it expires.
    pub async fn token(&self) -> Result<(String, SystemTime), String> {
        let credential =
            self.credentials.provide_credential_dyn(&self.context).await.map_err(|e| e.to_string())?.ok_or(
                "no AWS credentials for kafka.msk_iam: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile \
             (AWS_PROFILE), a web identity token (IRSA) or an instance role",
            )?;
        let now = SystemTime::now();
        let url = presign(&credential, &self.region, now);
        // Not signed: it names the client, as the signer libraries do.
        let with_agent = format!("{url}&User-Agent=icefall-writer%2F{}", env!("CARGO_PKG_VERSION"));
        Ok((base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(with_agent), now + TOKEN_LIFETIME))
    }

    /// What librdkafka's token refresh asks for, from its own thread (no runtime of ours there).
    pub fn oauth_token(&self) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (token, expires) = runtime.block_on(self.token())?;
        let lifetime_ms = expires.duration_since(UNIX_EPOCH)?.as_millis() as i64;
        Ok(OAuthToken { token, principal_name: "icefall-writer".into(), lifetime_ms })
    }
}

/// The presigned `kafka-cluster:Connect` URL, SigV4 with the signature in the query. Written
/// out here because MSK checks it as AWS's own signers make it, with the SHA-256 of the empty
/// payload, where reqsign presigns the S3 way (`UNSIGNED-PAYLOAD`).
fn presign(credential: &Credential, region: &str, at: SystemTime) -> String {
    let stamp = chrono::DateTime::<chrono::Utc>::from(at);
    let (date, time) = (stamp.format("%Y%m%d").to_string(), stamp.format("%Y%m%dT%H%M%SZ").to_string());
    let host = format!("kafka.{region}.amazonaws.com");
    let scope = format!("{date}/{region}/{SERVICE}/aws4_request");
    let mut query = vec![
        ("Action", "kafka-cluster:Connect".to_string()),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential", format!("{}/{scope}", credential.access_key_id)),
        ("X-Amz-Date", time.clone()),
        ("X-Amz-Expires", TOKEN_LIFETIME.as_secs().to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ];
    if let Some(token) = &credential.session_token {
        query.push(("X-Amz-Security-Token", token.clone()));
    }
    query.sort();
    let canonical_query: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    let canonical_query = canonical_query.join("&");
    let canonical_request = format!("GET\n/\n{canonical_query}\nhost:{host}\n\nhost\n{}", hex_sha256(b""));
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{time}\n{scope}\n{}", hex_sha256(canonical_request.as_bytes()));
    let mut key = hmac_sha256(format!("AWS4{}", credential.secret_access_key).as_bytes(), date.as_bytes());
    for part in [region, SERVICE, "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex_hmac_sha256(&key, string_to_sign.as_bytes());
    format!("https://{host}/?{canonical_query}&X-Amz-Signature={signature}")
}

/// SigV4's URI encoding: everything but `A-Z a-z 0-9 - _ . ~`.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Token refresh for every Kafka client of ours: MSK IAM tokens when configured. (OIDC tokens,
/// `sasl.oauthbearer.method = "oidc"`, librdkafka fetches on its own background thread, so
/// their refreshes never come here.)
pub struct TokenContext(Option<MskIamTokens>);

impl TokenContext {
    pub fn new(config: Option<&MskIamConfig>) -> Self {
        TokenContext(config.map(MskIamTokens::new))
    }

    pub fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        match &self.0 {
            Some(tokens) => tokens.oauth_token(),
            None => Err("OAUTHBEARER tokens come from an OIDC endpoint (sasl.oauthbearer.method = \"oidc\") or from \
                         kafka.msk_iam; set one of them"
                .into()),
        }
    }
}

impl rdkafka::ClientContext for TokenContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        TokenContext::generate_oauth_token(self, config)
    }
}

impl rdkafka::consumer::ConsumerContext for TokenContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_is_a_presigned_connect_request() {
        let tokens = MskIamTokens::with_static_credentials("eu-west-1", "AKIDEXAMPLE", "secret");
        let (token, expires) = tokens.token().await.expect("token");
        let url =
            String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).expect("base64url"))
                .expect("utf-8");
        assert!(url.starts_with("https://kafka.eu-west-1.amazonaws.com/?"), "{url}");
        for part in [
            "Action=kafka-cluster%3AConnect",
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Credential=AKIDEXAMPLE%2F",
            "%2Feu-west-1%2Fkafka-cluster%2Faws4_request",
            "X-Amz-Expires=900",
            "X-Amz-SignedHeaders=host",
            "X-Amz-Signature=",
            "User-Agent=icefall-writer",
        ] {
            assert!(url.contains(part), "{part} in {url}");
        }
        let left = expires.duration_since(SystemTime::now()).expect("in the future");
        assert!(left > Duration::from_secs(890) && left <= TOKEN_LIFETIME, "{left:?}");
    }
}
