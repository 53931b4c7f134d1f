//! Request bodies as streams: plain bodies checked against `x-amz-content-sha256`, and
//! `aws-chunked` bodies decoded with each chunk signature and the trailing checksum verified.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

use super::error::{ErrorCode, S3Error, S3Result};
use super::sigv4::{EMPTY_SHA256, SigningKey, signatures_equal};
use crate::store::BodyStream;

/// Why a body stream failed; carried inside `io::Error` through the store and mapped back here.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the provided x-amz-content-sha256 does not match what was computed")]
    Sha256Mismatch,
    #[error("a chunk signature does not match")]
    ChunkSignature,
    #[error("malformed aws-chunked body: {0}")]
    MalformedChunk(&'static str),
    #[error("decoded length does not match x-amz-decoded-content-length")]
    DecodedLength,
    #[error("body exceeds the limit of {0} bytes")]
    TooLarge(u64),
    #[error("no body data arrived within the idle timeout")]
    Idle,
}

impl BodyError {
    pub fn to_s3(&self) -> S3Error {
        match self {
            BodyError::Sha256Mismatch => S3Error::new(
                ErrorCode::XAmzContentSHA256Mismatch,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
            BodyError::ChunkSignature => S3Error::new(
                ErrorCode::SignatureDoesNotMatch,
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ),
            BodyError::MalformedChunk(what) => S3Error::new(
                ErrorCode::IncompleteBody,
                format!("The aws-chunked request body is malformed: {what}"),
            ),
            BodyError::DecodedLength => S3Error::new(
                ErrorCode::IncompleteBody,
                "You did not provide the number of bytes specified by the x-amz-decoded-content-length header",
            ),
            BodyError::TooLarge(_) => S3Error::new(
                ErrorCode::MalformedXML,
                "The request body is larger than allowed for this operation",
            ),
            BodyError::Idle => S3Error::new(
                ErrorCode::RequestTimeout,
                "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
            ),
        }
    }
}

fn io_err(e: BodyError) -> std::io::Error {
    std::io::Error::other(e)
}

/// How long a request body may send nothing before the request fails with `RequestTimeout`.
const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The raw incoming body as a byte stream; a body that stalls for [`BODY_IDLE_TIMEOUT`] fails
/// (a client that sends less than its Content-Length cannot hold a request open forever).
pub fn raw_stream(body: axum::body::Body) -> BodyStream {
    let inner = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    Box::pin(futures::stream::unfold(Some(inner), |state| async move {
        let mut inner = state?;
        match tokio::time::timeout(BODY_IDLE_TIMEOUT, inner.next()).await {
            Ok(Some(item)) => Some((item, Some(inner))),
            Ok(None) => None,
            Err(_) => Some((Err(io_err(BodyError::Idle)), None)),
        }
    }))
}

/// A plain body; when `expected_sha256` is given, the stream fails at its end on a mismatch.
pub fn plain(body: axum::body::Body, expected_sha256: Option<[u8; 32]>) -> BodyStream {
    let inner = raw_stream(body);
    match expected_sha256 {
        None => inner,
        Some(expected) => {
            let state = (inner, Some(Sha256::new()), expected);
            Box::pin(futures::stream::unfold(
                state,
                |(mut inner, mut hasher, expected)| async move {
                    let h = hasher.as_mut()?;
                    match inner.next().await {
                        Some(Ok(chunk)) => {
                            h.update(&chunk);
                            Some((Ok(chunk), (inner, hasher, expected)))
                        }
                        Some(Err(e)) => Some((Err(e), (inner, None, expected))),
                        None => {
                            let digest: [u8; 32] = hasher.take()?.finalize().into();
                            if digest == expected {
                                None
                            } else {
                                Some((
                                    Err(io_err(BodyError::Sha256Mismatch)),
                                    (inner, None, expected),
                                ))
                            }
                        }
                    }
                },
            ))
        }
    }
}

/// Reads a small body (XML documents) into memory, refusing more than `limit` bytes.
pub async fn read_to_limit(mut body: BodyStream, limit: u64) -> S3Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(crate::store::StoreError::Body)?;
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge(limit).to_s3());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Signing state for `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`: each chunk's signature
/// chains from the previous one, starting at the request's seed signature.
pub struct ChunkSigner {
    pub key: SigningKey,
    pub amz_date: String,
    pub scope: String,
    pub previous: String,
}

impl ChunkSigner {
    fn verify_chunk(&mut self, data_sha256: &str, signature: &str) -> bool {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{data_sha256}",
            self.amz_date, self.scope, self.previous
        );
        let expected = self.key.sign(&sts);
        let ok = signatures_equal(&expected, signature);
        self.previous = expected;
        ok
    }

    fn verify_trailer(&self, trailer_text: &str, signature: &str) -> bool {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            hex::encode(Sha256::digest(trailer_text.as_bytes()))
        );
        signatures_equal(&self.key.sign(&sts), signature)
    }
}

/// Trailing headers (`name`, `value`) of an aws-chunked body, filled in when the body ends.
pub type TrailerSlot = Arc<Mutex<Vec<(String, String)>>>;

const MAX_LINE: u64 = 4096;
const READ_PIECE: usize = 256 * 1024;

struct ChunkDecoder<R> {
    reader: BufReader<R>,
    signer: Option<ChunkSigner>,
    trailer: bool,
    remaining: u64,
    in_chunk: bool,
    chunk_hash: Sha256,
    chunk_signature: Option<String>,
    total: u64,
    decoded_length: Option<u64>,
    trailers: TrailerSlot,
    done: bool,
}

impl<R: AsyncRead + Unpin> ChunkDecoder<R> {
    async fn line(&mut self) -> Result<String, BodyError> {
        let mut buf = Vec::new();
        (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|_| BodyError::MalformedChunk("body ended early"))?;
        if !buf.ends_with(b"\r\n") {
            return Err(BodyError::MalformedChunk("line not terminated by CRLF"));
        }
        buf.truncate(buf.len() - 2);
        String::from_utf8(buf).map_err(|_| BodyError::MalformedChunk("line is not UTF-8"))
    }

    fn finish_chunk(&mut self) -> Result<(), BodyError> {
        let hash = hex::encode(std::mem::take(&mut self.chunk_hash).finalize());
        if let Some(signer) = self.signer.as_mut() {
            let sig = self
                .chunk_signature
                .take()
                .ok_or(BodyError::MalformedChunk("chunk signature missing"))?;
            if !signer.verify_chunk(&hash, &sig) {
                return Err(BodyError::ChunkSignature);
            }
        }
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.remaining > 0 {
                let want = (self.remaining as usize).min(READ_PIECE);
                let mut buf = BytesMut::with_capacity(want);
                let n = (&mut self.reader)
                    .take(want as u64)
                    .read_buf(&mut buf)
                    .await
                    .map_err(|_| BodyError::MalformedChunk("body ended early"))?;
                if n == 0 {
                    return Err(BodyError::MalformedChunk("body ended inside a chunk"));
                }
                self.remaining -= n as u64;
                self.total += n as u64;
                self.chunk_hash.update(&buf);
                return Ok(Some(buf.freeze()));
            }
            if self.in_chunk {
                if !self.line().await?.is_empty() {
                    return Err(BodyError::MalformedChunk("chunk data longer than its size"));
                }
                self.finish_chunk()?;
                self.in_chunk = false;
            }
            let header = self.line().await?;
            let (size_text, ext) = header.split_once(';').unwrap_or((header.as_str(), ""));
            let size = u64::from_str_radix(size_text.trim(), 16)
                .map_err(|_| BodyError::MalformedChunk("chunk size is not hex"))?;
            self.chunk_signature = ext
                .split(';')
                .find_map(|e| e.trim().strip_prefix("chunk-signature="))
                .map(str::to_string);
            if self.signer.is_some() && self.chunk_signature.is_none() {
                return Err(BodyError::MalformedChunk("chunk signature missing"));
            }
            if size > 0 {
                self.remaining = size;
                self.in_chunk = true;
                continue;
            }
            // The final, empty chunk.
            self.finish_chunk()?;
            self.read_trailers().await?;
            if let Some(expected) = self.decoded_length
                && expected != self.total
            {
                return Err(BodyError::DecodedLength);
            }
            self.done = true;
            return Ok(None);
        }
    }

    async fn read_trailers(&mut self) -> Result<(), BodyError> {
        let mut trailers = Vec::new();
        let mut signed_text = String::new();
        let mut trailer_signature = None;
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            if !self.trailer {
                return Err(BodyError::MalformedChunk("unexpected trailer"));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or(BodyError::MalformedChunk("trailer is not name:value"))?;
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            if name == "x-amz-trailer-signature" {
                trailer_signature = Some(value);
            } else {
                signed_text.push_str(&format!("{name}:{value}\n"));
                trailers.push((name, value));
            }
        }
        if self.trailer
            && let Some(signer) = &self.signer
        {
            let sig =
                trailer_signature.ok_or(BodyError::MalformedChunk("trailer signature missing"))?;
            if !signer.verify_trailer(&signed_text, &sig) {
                return Err(BodyError::ChunkSignature);
            }
        }
        if let Ok(mut slot) = self.trailers.lock() {
            *slot = trailers;
        }
        Ok(())
    }
}

/// Decodes an `aws-chunked` body. `signer` is set for the signed variants; `trailer` when the
/// body ends with trailing headers, which land in `trailers`.
pub fn aws_chunked(
    body: axum::body::Body,
    signer: Option<ChunkSigner>,
    trailer: bool,
    decoded_length: Option<u64>,
    trailers: TrailerSlot,
) -> BodyStream {
    let reader = tokio_util::io::StreamReader::new(raw_stream(body));
    let decoder = ChunkDecoder {
        reader: BufReader::with_capacity(64 * 1024, reader),
        signer,
        trailer,
        remaining: 0,
        in_chunk: false,
        chunk_hash: Sha256::new(),
        chunk_signature: None,
        total: 0,
        decoded_length,
        trailers,
        done: false,
    };
    Box::pin(futures::stream::unfold(decoder, |mut d| async move {
        match d.next().await {
            Ok(Some(bytes)) => Some((Ok(bytes), d)),
            Ok(None) => None,
            Err(e) => {
                d.done = true;
                Some((Err(io_err(e)), d))
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(s: BodyStream) -> Result<Vec<u8>, std::io::Error> {
        let mut out = Vec::new();
        let mut s = s;
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn unsigned_trailer_body_decodes() {
        let raw = "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
        let slot = TrailerSlot::default();
        let s = aws_chunked(
            axum::body::Body::from(raw),
            None,
            true,
            Some(11),
            slot.clone(),
        );
        assert_eq!(collect(s).await.unwrap(), b"hello world");
        assert_eq!(
            slot.lock().unwrap().clone(),
            vec![("x-amz-checksum-crc32".to_string(), "DUoRhQ==".to_string())]
        );
    }

    #[tokio::test]
    async fn truncated_chunked_body_fails() {
        let s = aws_chunked(
            axum::body::Body::from("5\r\nhel"),
            None,
            false,
            None,
            TrailerSlot::default(),
        );
        assert!(collect(s).await.is_err());
    }

    #[tokio::test]
    async fn sha256_mismatch_fails_at_end() {
        let good: [u8; 32] = Sha256::digest(b"abc").into();
        let s = plain(axum::body::Body::from("abc"), Some(good));
        assert_eq!(collect(s).await.unwrap(), b"abc");
        let s = plain(axum::body::Body::from("abd"), Some(good));
        assert!(collect(s).await.is_err());
    }
}
