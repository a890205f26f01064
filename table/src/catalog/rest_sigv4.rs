//! AWS SigV4 signing of REST catalog requests (`rest.sigv4-enabled`), as AWS Glue's Iceberg
//! endpoint and S3 Tables require. Credentials come from the usual AWS chain (environment,
//! profile, web identity, container and instance metadata) through `reqsign`, the signer
//! opendal already uses for S3; the payload hash is sent and signed (`x-amz-content-sha256`),
//! as services other than S3 require.

use bytes::Bytes;
use reqsign_aws_v4::{Credential, DefaultCredentialProvider, RequestSigner};
use reqsign_core::{Context, HttpSend, OsEnv, Signer};
use reqsign_file_read_tokio::TokioFileRead;

use crate::{Error, Result};

/// Signs requests for one service in one region.
pub struct SigV4 {
    signer: Signer<Credential>,
    region: String,
    service: String,
}

/// How the credential chain reaches STS and the metadata services.
#[derive(Debug)]
struct ReqwestSend(reqwest::Client);

impl HttpSend for ReqwestSend {
    async fn http_send(&self, req: http::Request<Bytes>) -> reqsign_core::Result<http::Response<Bytes>> {
        let request = reqwest::Request::try_from(req)
            .map_err(|e| reqsign_core::Error::unexpected(format!("not a request: {e}")))?;
        let response = self
            .0
            .execute(request)
            .await
            .map_err(|e| reqsign_core::Error::unexpected(format!("request failed: {e}")))?;
        let mut answer = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            answer = answer.header(name, value);
        }
        let body = response.bytes().await.map_err(|e| reqsign_core::Error::unexpected(e.to_string()))?;
        answer.body(body).map_err(|e| reqsign_core::Error::unexpected(e.to_string()))
    }
}

/// What the AWS credential chain reads with: the environment, files, and HTTP for STS and the
/// metadata services.
pub fn aws_context(http: reqwest::Client) -> Context {
    Context::new().with_file_read(TokioFileRead).with_http_send(ReqwestSend(http)).with_env(OsEnv)
}

impl SigV4 {
    /// `region` and `service` (`glue`, `s3tables`, `execute-api`…) name the signing scope.
    pub fn new(region: &str, service: &str, http: reqwest::Client) -> Self {
        let context = aws_context(http);
        let signer = Signer::new(context, DefaultCredentialProvider::new(), RequestSigner::new(service, region));
        SigV4 { signer, region: region.to_string(), service: service.to_string() }
    }

    /// Adds the signature (and the payload hash, date and session token it covers) to `request`.
    pub async fn sign(&self, request: &mut reqwest::Request) -> Result<()> {
        let body = request.body().and_then(reqwest::Body::as_bytes).unwrap_or_default();
        let hash = reqsign_core::hash::hex_sha256(body);
        let mut parts = http::Request::builder()
            .method(request.method().clone())
            .uri(self.signed_uri(request.url()))
            .body(())
            .map_err(|e| Error::Config(format!("catalog: cannot sign a request to {}: {e}", request.url())))?
            .into_parts()
            .0;
        parts.headers = request.headers().clone();
        let hash = http::HeaderValue::from_str(&hash).map_err(|e| Error::Config(e.to_string()))?;
        parts.headers.insert("x-amz-content-sha256", hash);
        self.signer.sign(&mut parts, None).await.map_err(|e| {
            Error::Config(format!(
                "catalog: cannot sign requests for {} in {} ({e}); AWS credentials come from AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, a profile (AWS_PROFILE), a web identity token or the instance role",
                self.service, self.region
            ))
        })?;
        *request.headers_mut() = parts.headers;
        Ok(())
    }

    /// The URI the signer sees. Services other than S3 sign the path URI-encoded twice (the
    /// wire path encoded once more), and the signer encodes what it is given once after
    /// decoding it: so it is given the wire path's segments encoded once more.
    fn signed_uri(&self, url: &reqwest::Url) -> String {
        if self.service == "s3" {
            return url.as_str().to_string();
        }
        let path: Vec<String> = url.path().split('/').map(super::rest::encode_segment).collect();
        let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
        format!("{}{}{query}", url.origin().ascii_serialization(), path.join("/"))
    }
}
