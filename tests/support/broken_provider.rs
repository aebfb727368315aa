//! A provider endpoint that dies mid-response, for the kill drills: a bare HTTP/1.1 server on a free
//! loopback port that reads each request in full, then answers with a Tencent FaceID body that says
//! "match" (`Result` `"0"`) and breaks it in the way [`Break`] says. The body is a real decision on
//! purpose: if the gateway ever read a broken answer as complete, the case would come out VERIFIED.
//!
//! The server runs on its own task and stops when dropped; connections it stalls are held until then.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A complete, valid `IdCardVerification` answer meaning "name and ID number match".
pub const MATCH_BODY: &str = r#"{"Response":{"Result":"0","Description":"成功","RequestId":"0f0e0d0c-drill"}}"#;

/// How the answer breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    /// No break: the whole answer (the control that shows the body would be read as a match).
    Nothing,
    /// Headers with the full `Content-Length`, half the body, then the connection closes.
    HalfBody,
    /// The whole JSON body, but `Content-Length` promised more; then the connection closes.
    ShortOfLength,
    /// `Transfer-Encoding: chunked`, the whole JSON in one chunk, closed without the last chunk.
    UnterminatedChunks,
    /// Headers, then nothing: the connection stays open and silent.
    StallAfterHeaders,
}

/// The running endpoint; stops on drop.
pub struct BrokenProvider {
    pub addr: SocketAddr,
    /// Requests read in full (each one reached the "provider").
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl BrokenProvider {
    pub async fn start(mode: Break) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            // Dropped with this task (on abort), which aborts every connection still held.
            let mut held = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.spawn(answer(stream, mode, counter.clone()));
            }
        });
        Self { addr, requests, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for BrokenProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (headers, then `Content-Length` bytes of body); `false` if the peer went away.
async fn read_request(stream: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    true
}

async fn answer(mut stream: TcpStream, mode: Break, counter: Arc<AtomicUsize>) {
    // Keep-alive: the gateway's client may reuse a connection for the next request.
    while read_request(&mut stream).await {
        counter.fetch_add(1, Ordering::SeqCst);
        let body = MATCH_BODY.as_bytes();
        let head = |length: usize| {
            format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
        };
        let written = match mode {
            Break::Nothing => {
                let mut out = head(body.len()).into_bytes();
                out.extend_from_slice(body);
                stream.write_all(&out).await
            }
            Break::HalfBody => {
                let mut out = head(body.len()).into_bytes();
                out.extend_from_slice(&body[..body.len() / 2]);
                stream.write_all(&out).await
            }
            Break::ShortOfLength => {
                let mut out = head(body.len() + 64).into_bytes();
                out.extend_from_slice(body);
                stream.write_all(&out).await
            }
            Break::UnterminatedChunks => {
                let mut out =
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
                out.extend_from_slice(b"\r\n");
                stream.write_all(&out).await
            }
            Break::StallAfterHeaders => {
                let _ = stream.write_all(head(body.len()).as_bytes()).await;
                let _ = stream.flush().await;
                // Silent until the gateway gives up (it closes) or the server is dropped.
                let mut sink = [0u8; 64];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
        };
        if written.is_err() || mode != Break::Nothing {
            // Dies mid-response: the connection goes without the rest.
            let _ = stream.shutdown().await;
            return;
        }
    }
}
