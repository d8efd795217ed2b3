//! A tiny HTTP/1.1 server on loopback standing in for an issuer: it serves
//! JSON documents by path, which a test may change (key rotation), and
//! counts the requests for each path (caching and rate limits).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Shared<T> = Arc<Mutex<T>>;

pub struct TestServer {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base: String,
    documents: Shared<HashMap<String, String>>,
    hits: Shared<HashMap<String, usize>>,
}

impl TestServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = TestServer {
            base,
            documents: Shared::default(),
            hits: Shared::default(),
        };
        let (documents, hits) = (server.documents.clone(), server.hits.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, documents.clone(), hits.clone()));
            }
        });
        server
    }

    pub fn serve(&self, path: &str, body: impl Into<String>) {
        self.documents
            .lock()
            .unwrap()
            .insert(path.to_string(), body.into());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn answer(
    mut stream: TcpStream,
    documents: Shared<HashMap<String, String>>,
    hits: Shared<HashMap<String, usize>>,
) {
    let Some(path) = request_path(&mut stream).await else {
        return;
    };
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let document = documents.lock().unwrap().get(&path).cloned();
    let (status, body) = match document {
        Some(body) => ("200 OK", body),
        None => ("404 Not Found", String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    // The client may have given up (size limit); that is its business.
    let _ = stream.write_all(response.as_bytes()).await;
}

/// The path of a GET, read up to the end of its headers.
async fn request_path(stream: &mut TcpStream) -> Option<String> {
    let mut request = Vec::new();
    let mut buffer = [0; 1024];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 || request.len() > 64 * 1024 {
            return None;
        }
        request.extend_from_slice(&buffer[..read]);
    }
    let request = String::from_utf8_lossy(&request);
    request.split_whitespace().nth(1).map(str::to_string)
}
