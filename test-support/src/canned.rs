//! An HTTP client for the SDK that answers chosen DynamoDB operations with canned
//! responses and sends everything else to DynamoDB Local: the real SDK parses the
//! answer, so a test drives paths DynamoDB Local cannot produce (a throttled
//! transaction, the DescribeTable of a global table).

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::http::{HttpRequest, HttpResponse};
use aws_sdk_dynamodb::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_types::body::SdkBody;

/// One canned answer for an operation (e.g. `TransactWriteItems`), `times` times.
#[derive(Debug, Clone)]
struct Rule {
    operation: String,
    times: usize,
    status: u16,
    body: String,
}

/// The rules, shared by the client and the test.
#[derive(Debug, Clone, Default)]
pub struct Canned {
    rules: Arc<Mutex<Vec<Rule>>>,
    answered: Arc<Mutex<Vec<String>>>,
}

impl Canned {
    /// Answers the next `times` calls of `operation` with `status` and the JSON `body`,
    /// without sending them.
    pub fn answer(&self, operation: &str, times: usize, status: u16, body: impl Into<String>) {
        self.rules.lock().unwrap().push(Rule {
            operation: operation.to_owned(),
            times,
            status,
            body: body.into(),
        });
    }

    /// The operations answered so far, in order.
    pub fn answered(&self) -> Vec<String> {
        self.answered.lock().unwrap().clone()
    }

    /// A DynamoDB client for DynamoDB Local whose calls pass through these rules first.
    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        let sdk = crate::sdk_config().await;
        // The client the SDK builds by default (hyper 1.x, rustls with aws-lc).
        let inner = sdk.http_client().unwrap_or_else(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .build_https()
        });
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .http_client(SharedHttpClient::new(CannedClient {
                inner,
                canned: self.clone(),
            }))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    fn take(&self, operation: &str) -> Option<(u16, String)> {
        let mut rules = self.rules.lock().unwrap();
        let rule = rules
            .iter_mut()
            .find(|r| r.operation == operation && r.times > 0)?;
        rule.times -= 1;
        self.answered.lock().unwrap().push(operation.to_owned());
        Some((rule.status, rule.body.clone()))
    }
}

#[derive(Debug)]
struct CannedClient {
    inner: SharedHttpClient,
    canned: Canned,
}

impl HttpClient for CannedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(CannedConnector {
            inner: self.inner.http_connector(settings, components),
            canned: self.canned.clone(),
        })
    }
}

#[derive(Debug)]
struct CannedConnector {
    inner: SharedHttpConnector,
    canned: Canned,
}

impl HttpConnector for CannedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        match self.canned.take(&operation) {
            Some((status, body)) => {
                let mut response = HttpResponse::new(
                    status.try_into().expect("a valid status"),
                    SdkBody::from(body),
                );
                response
                    .headers_mut()
                    .insert("content-type", "application/x-amz-json-1.0");
                HttpConnectorFuture::ready(Ok(response))
            }
            None => self.inner.call(request),
        }
    }
}
