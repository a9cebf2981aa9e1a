//! The backup download (`GET /api/v1/backup`, administrators; the CLI's `bureau backup
//! create`): the store's archive (bureau_store::backup) streamed as it is written, so a large
//! store never sits in memory. A failure midway aborts the response, so a partial download
//! is never mistaken for a backup (the archive's gzip and tar ends would be missing).

use bureau_admin::{AdminApi, Caller};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Bytes handed over per chunk.
const CHUNK: usize = 256 * 1024;

/// A response body fed from a channel.
pub struct ChannelBody(mpsc::Receiver<std::io::Result<Bytes>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// A `Write` into the channel, in chunks; a gone receiver (the client left) is an error
/// that stops the backup.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

pub type Streamed = Response<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>;

pub fn download(admin: &AdminApi, req: &Request<Incoming>, caller: Caller) -> Streamed {
    use http_body_util::BodyExt;
    if let Some(r) = admin.refuse_unless_admin(req, caller) {
        return r.map(|b| b.map_err(|e| match e {}).boxed());
    }
    let (tx, rx) = mpsc::channel(4);
    let store = admin.store().clone();
    let system_dir = admin.info().system_dir.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        match store.backup(&mut w).and_then(|i| {
            std::io::Write::flush(&mut w)?;
            Ok(i)
        }) {
            Ok(info) => {
                log::info!(
                    "backup: {} blob files, {} bytes of blobs, downloaded",
                    info.blobs,
                    info.blob_bytes
                );
                if let Err(e) = bureau_core::system::record_backup(&system_dir, bureau_store::now())
                {
                    log::warn!("backup: recording its time: {e}");
                }
            }
            Err(e) => {
                log::error!("backup: {e}");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let name = format!(
        "attachment; filename=\"bureau-backup-{}.tar.gz\"",
        bureau_store::now()
    );
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/gzip")
        .header("content-disposition", name)
        .header("cache-control", "no-store")
        .body(ChannelBody(rx).boxed())
        .unwrap_or_else(|_| Response::new(ChannelBody(mpsc::channel(1).1).boxed()))
}
