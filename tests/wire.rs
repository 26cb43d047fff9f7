//! A small blocking HTTP/1.1 server over rustls, one thread per connection, for
//! the suite's own peers: the fault proxy in front of the control plane and
//! stand-ins for third-party APIs.
//!
//! The fault proxy needs exact control over the connection — answer, close
//! without answering, reset, stall — which is why this is a loop of its own and
//! not a framework. Requests carry `Content-Length` bodies (what every protocol
//! v1 client sends); connections are kept alive so a whole shot can use one.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::{ServerConnection, StreamOwned};

/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (a log chunk is far smaller).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// How long an idle keep-alive connection is held open.
const IDLE: Duration = Duration::from_secs(60);

pub struct Request {
    pub method: String,
    /// The path without the query string, e.g. `/v1/claim`.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        Response {
            status,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body: serde_json::to_vec(value).expect("serializable response"),
        }
    }

    pub fn problem(status: u16, title: &str, detail: impl Into<String>) -> Response {
        let problem = sortie_protocol::Problem {
            kind: None,
            title: Some(title.to_string()),
            status: Some(status),
            detail: Some(detail.into()),
        };
        let mut r = Response::json(status, &problem);
        r.content_type = "application/problem+json".into();
        r
    }
}

/// What the handler wants done with the connection.
pub enum Reply {
    Respond(Response),
    /// Close the connection without a word (the response is lost).
    Drop,
    /// Send the first half of the response, then reset the connection.
    Truncate(Response),
    /// Hold the connection open, answering nothing, for this long, then close it.
    Stall(Duration),
}

pub type Handler = dyn Fn(Request) -> Reply + Send + Sync;

/// Accept connections until `stop` is set, each served on its own thread.
pub fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    handler: Arc<Handler>,
    stop: Arc<AtomicBool>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let tls = tls.clone();
        let handler = handler.clone();
        let stop = stop.clone();
        thread::spawn(move || {
            if let Err(e) = connection(stream, tls, &*handler, &stop) {
                if !quiet(&e) {
                    eprintln!("test peer: connection: {e}");
                }
            }
        });
    }
}

fn quiet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    ) || e.to_string().contains("peer closed connection")
}

fn connection(
    tcp: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    handler: &Handler,
    stop: &AtomicBool,
) -> io::Result<()> {
    tcp.set_read_timeout(Some(IDLE))?;
    tcp.set_nodelay(true)?;
    let raw = tcp.try_clone()?;
    let conn = ServerConnection::new(tls).map_err(io::Error::other)?;
    let mut reader = BufReader::new(StreamOwned::new(conn, tcp));
    while !stop.load(Ordering::Relaxed) {
        let Some(request) = read_request(&mut reader)? else {
            return Ok(());
        };
        let close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let reply = handler(request);
        match reply {
            Reply::Respond(response) => {
                let stream = reader.get_mut();
                stream.write_all(&encode(&response, close))?;
                stream.flush()?;
                if close {
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                    return Ok(());
                }
            }
            Reply::Drop => {
                let _ = raw.shutdown(Shutdown::Both);
                return Ok(());
            }
            Reply::Truncate(response) => {
                let bytes = encode(&response, false);
                let stream = reader.get_mut();
                stream.write_all(&bytes[..bytes.len() / 2])?;
                stream.flush()?;
                reset(&raw);
                return Ok(());
            }
            Reply::Stall(duration) => {
                thread::sleep(duration);
                let _ = raw.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Arrange for the close to send RST instead of FIN: SO_LINGER on, zero timeout.
fn reset(tcp: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    // The RST goes out when the last descriptor of the socket is closed, on return.
}

fn read_request<R: BufRead>(reader: &mut R) -> io::Result<Option<Request>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = reader.take(MAX_HEAD as u64).read_until(b'\n', &mut head)?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                head.clear();
                continue;
            }
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed request",
            ))
        }
    }
    let target = parsed.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut request = Request {
        method: parsed.method.unwrap_or("GET").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "chunked bodies are not supported",
        ));
    }
    let length: usize = match request.header("content-length") {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad content-length"))?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "request body too large",
        ));
    }
    request.body.resize(length, 0);
    reader.read_exact(&mut request.body)?;
    Ok(Some(request))
}

fn encode(response: &Response, close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(response.body.len() + 256);
    let reason = reason(response.status);
    out.extend_from_slice(format!("HTTP/1.1 {} {reason}\r\n", response.status).as_bytes());
    out.extend_from_slice(format!("content-length: {}\r\n", response.body.len()).as_bytes());
    if !response.body.is_empty() {
        out.extend_from_slice(format!("content-type: {}\r\n", response.content_type).as_bytes());
    }
    for (name, value) in &response.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&response.body);
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
