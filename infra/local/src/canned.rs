//! A stand-in for an AWS endpoint on loopback that answers every request with one canned
//! reply, so tests can make the real SDK clients meet an AWS error in the very shape the
//! service sends it (STS's XML `ErrorResponse`, DynamoDB's JSON `__type`), and count the calls.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::http;

type Canned = (u16, String, String);

/// A running stand-in; it stops when dropped.
#[derive(Debug)]
pub struct CannedEndpoint {
    /// Its URL, such as `http://127.0.0.1:40123`.
    pub endpoint: String,
    reply: Arc<Mutex<Canned>>,
    requests: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CannedEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CannedEndpoint {
    /// Starts on a free loopback port, answering 500 with an empty body until told otherwise.
    pub async fn start() -> std::io::Result<Self> {
        let reply = Arc::new(Mutex::new((500, "text/plain".to_owned(), String::new())));
        let requests = Arc::new(AtomicU32::new(0));
        let (r, n) = (Arc::clone(&reply), Arc::clone(&requests));
        let (task, endpoint) = http::spawn(move |request| {
            let (r, n) = (Arc::clone(&r), Arc::clone(&n));
            async move {
                // The whole request is read before it counts, as a server would.
                let _ = http::body_bytes(request).await;
                n.fetch_add(1, Ordering::SeqCst);
                let (status, kind, body) = r.lock().unwrap_or_else(PoisonError::into_inner).clone();
                let mut answer = http::reply(status, &kind, body);
                answer.headers_mut().insert(
                    "x-amzn-requestid",
                    hyper::header::HeaderValue::from_static("c6104cbe-af31-11e0-8154-cbc7ccf896c7"),
                );
                answer
            }
        })
        .await?;
        Ok(Self {
            endpoint,
            reply,
            requests,
            task,
        })
    }

    /// Answers every request from now on with `status`, content type `kind` and `body`.
    pub fn answer(&self, status: u16, kind: &str, body: &str) {
        *self.reply.lock().unwrap_or_else(PoisonError::into_inner) =
            (status, kind.to_owned(), body.to_owned());
    }

    /// STS's error answer (the Query protocol's XML `ErrorResponse`).
    pub fn sts_error(&self, status: u16, kind: &str, code: &str, message: &str) {
        self.answer(
            status,
            "text/xml",
            &format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  </Error>\n  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n</ErrorResponse>"
            ),
        );
    }

    /// DynamoDB's error answer (JSON with the error's `__type`).
    pub fn dynamodb_error(&self, status: u16, code: &str, message: &str) {
        self.answer(
            status,
            "application/x-amz-json-1.0",
            &serde_json::json!({
                "__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
                "message": message,
            })
            .to_string(),
        );
    }

    /// How many requests it has answered.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::SeqCst)
    }

    /// A DynamoDB client that calls this endpoint, retrying as the SDK's standard mode does
    /// (`max_attempts` in all) with short back-offs.
    pub async fn dynamodb_client(&self, max_attempts: u32) -> aws_sdk_dynamodb::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .test_credentials()
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(max_attempts)
                    .with_initial_backoff(std::time::Duration::from_millis(10)),
            )
            .load()
            .await;
        aws_sdk_dynamodb::Client::new(&config)
    }
}
