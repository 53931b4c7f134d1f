//! One HTTP exchange over `wasi:http` (the host lets it reach only the plugin's
//! `allowed_hosts`): a request whose body is already in memory (at most one part), and the
//! response's status, headers and a bounded body (S3 answers here are small XML documents).

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::streams::{OutputStream, StreamError};

/// The most of a response body kept (error documents, upload ids, part lists).
const MAX_RESPONSE: usize = 256 * 1024;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why an exchange failed before a response arrived.
#[derive(Debug)]
pub struct TransportError(pub String);

impl From<ErrorCode> for TransportError {
    fn from(e: ErrorCode) -> Self {
        TransportError(format!("{e:?}"))
    }
}

impl From<StreamError> for TransportError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Closed => TransportError("stream closed".into()),
            StreamError::LastOperationFailed(e) => TransportError(e.to_debug_string()),
        }
    }
}

fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "PUT" => Method::Put,
        "POST" => Method::Post,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    }
}

fn write_all(out: &OutputStream, data: &[u8]) -> Result<(), TransportError> {
    let total = data.len();
    write_chunks(out, data).map_err(|(e, left)| {
        TransportError(format!("{} after {} of {total} bytes", e.0, total - left))
    })
}

fn write_chunks(out: &OutputStream, mut data: &[u8]) -> Result<(), (TransportError, usize)> {
    let fail = |e: StreamError, left: usize| (TransportError::from(e), left);
    while !data.is_empty() {
        let ready = out.check_write().map_err(|e| fail(e, data.len()))?;
        if ready == 0 {
            out.subscribe().block();
            continue;
        }
        let n = (ready as usize).min(data.len());
        out.write(&data[..n]).map_err(|e| fail(e, data.len()))?;
        data = &data[n..];
    }
    // Once hyper has taken `content-length` bytes it drops its end of the body, so a flush may
    // find the stream closed after everything was sent.
    match out.blocking_flush() {
        Ok(()) | Err(StreamError::Closed) => Ok(()),
        Err(e) => Err(fail(e, 0)),
    }
}

/// Sends `method` `scheme://authority` + `path_and_query` with `headers` (no `host`: wasi:http
/// sets it from the authority) and `body`.
pub fn send(
    method_name: &str,
    https: bool,
    authority: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Response, TransportError> {
    let list: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    let fields =
        Fields::from_list(&list).map_err(|e| TransportError(format!("bad header: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let bad = |what: &str| TransportError(format!("bad {what}"));
    request
        .set_method(&method(method_name))
        .map_err(|()| bad("method"))?;
    request
        .set_scheme(Some(if https { &Scheme::Https } else { &Scheme::Http }))
        .map_err(|()| bad("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| bad("authority"))?;
    request
        .set_path_with_query(Some(path_and_query))
        .map_err(|()| bad("path"))?;
    let outgoing = request.body().map_err(|()| bad("body"))?;
    // Start the exchange first, then feed the body: the host streams it as it is written.
    let pending = outgoing_handler::handle(request, None)?;
    let written = {
        let stream = outgoing.write().map_err(|()| bad("body stream"))?;
        write_all(&stream, body)
    };
    let finished = match written {
        Ok(()) => OutgoingBody::finish(outgoing, None).map_err(TransportError::from),
        Err(e) => Err(e),
    };
    // The server may have answered (an error) before taking the whole body: its answer says
    // more than the broken stream does.
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(code))) => {
            let sent = finished
                .err()
                .map(|e| format!(" (sending the body: {})", e.0));
            return Err(TransportError(format!(
                "{code:?}{}",
                sent.unwrap_or_default()
            )));
        }
        _ => return Err(finished.err().unwrap_or_else(|| bad("no response"))),
    };
    let status = response.status();
    let headers = response.headers().entries();
    let incoming = response.consume().map_err(|()| bad("response body"))?;
    let mut out = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| bad("response stream"))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    if out.len() < MAX_RESPONSE {
                        out.extend_from_slice(&chunk);
                    }
                }
                Err(StreamError::Closed) => break,
                Err(e) => return Err(e.into()),
            }
        }
    }
    let _ = IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body: out,
    })
}
