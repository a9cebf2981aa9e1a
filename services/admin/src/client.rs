//! The CLI's client of the admin API, over the daemon's unix socket.

use crate::api::ApiError;
use bureau_words::said;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the bureau daemon at {path}: {message} (is `bureau serve` running?)")]
    Connect { path: String, message: String },
    #[error("{}", .0.error)]
    Api(ApiError, StatusCode),
    #[error("talking to the daemon: {0}")]
    Protocol(String),
}

pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_path_buf(),
        }
    }

    /// One request; `Ok(None)` for an answer without a body (204).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Option<T>, ClientError> {
        let data = self.raw(method, path, body).await?;
        if data.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// One request with a JSON body; the answer's body as it came (empty for 204).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Vec<u8>, ClientError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| ClientError::Protocol(e.to_string()))?,
            None => Vec::new(),
        };
        self.send(method, path, "application/json", bytes).await
    }

    /// One request whose body is a file's bytes (an update bundle).
    pub async fn upload(
        &self,
        method: Method,
        path: &str,
        data: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        self.send(method, path, "application/octet-stream", data)
            .await
    }

    /// A GET whose answer is written to `out` as it comes (a backup); the bytes written.
    pub async fn download(
        &self,
        path: &str,
        out: &mut impl std::io::Write,
    ) -> Result<u64, ClientError> {
        let proto = |e: &dyn std::fmt::Display| ClientError::Protocol(e.to_string());
        let resp = self
            .request(Method::GET, path, "application/json", Vec::new())
            .await?;
        let status = resp.status();
        let mut body = resp.into_body();
        if !status.is_success() {
            let data = body.collect().await.map_err(|e| proto(&e))?.to_bytes();
            return Err(api_error(status, &data));
        }
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ClientError::Protocol(format!("the download was cut: {e}")))?;
            if let Ok(data) = frame.into_data() {
                out.write_all(&data).map_err(|e| proto(&e))?;
                n += data.len() as u64;
            }
        }
        Ok(n)
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let proto = |e: &dyn std::fmt::Display| ClientError::Protocol(e.to_string());
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| ClientError::Connect {
                path: self.socket.display().to_string(),
                message: e.to_string(),
            })?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| proto(&e))?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| proto(&e))?;
        send.send_request(req).await.map_err(|e| proto(&e))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        let proto = |e: &dyn std::fmt::Display| ClientError::Protocol(e.to_string());
        let resp = self.request(method, path, content_type, bytes).await?;
        let status = resp.status();
        let data = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| proto(&e))?
            .to_bytes();
        if !status.is_success() {
            return Err(api_error(status, &data));
        }
        if status == StatusCode::NO_CONTENT {
            return Ok(Vec::new());
        }
        Ok(data.to_vec())
    }
}

fn api_error(status: StatusCode, data: &[u8]) -> ClientError {
    let err: ApiError = serde_json::from_slice(data)
        .unwrap_or_else(|_| ApiError::said(said("err_http").with("status", status), None));
    ClientError::Api(err, status)
}
