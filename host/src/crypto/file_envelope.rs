//! The client-side envelope format of `sluice encrypt` / `sluice decrypt`: a small JSON header
//! naming the KMS key and carrying the wrapped data key, followed by the body sealed in exactly
//! the segment format the server stores objects in ([`super::segments`], part number 0).
//!
//! ```text
//! "SLUICE-ENVELOPE-1\n"          18 bytes
//! header length                  u32 big-endian
//! header                         JSON: {"key_id", "wrapped_key" (base64), "context" ([[k, v]]),
//!                                       "binding" (hex, 16 bytes), "nonce_prefix" (hex, 8 bytes),
//!                                       "size" (plaintext bytes), "segment_size" (65536)}
//! sealed segments                AES-256-GCM, 64 KiB plaintext + 16-byte tag each
//! ```

use std::path::Path;

use bytes::BytesMut;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use super::segments::{self, ObjectCipher, OpenStream, PieceSeal, Sealer, sealed_range};

pub const MAGIC: &[u8; 18] = b"SLUICE-ENVELOPE-1\n";
const MAX_HEADER: u32 = 64 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopeHeader {
    pub key_id: String,
    pub wrapped_key: String,
    #[serde(default)]
    pub context: Vec<(String, String)>,
    pub binding: String,
    pub nonce_prefix: String,
    pub size: u64,
    pub segment_size: u64,
}

fn invalid(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

fn hex_array<const N: usize>(text: &str) -> std::io::Result<[u8; N]> {
    hex::decode(text)
        .ok()
        .and_then(|raw| <[u8; N]>::try_from(raw).ok())
        .ok_or_else(|| invalid("bad hex field in the envelope header"))
}

/// Seals `input` into `output` under `key`, with `header` (whose size and nonce fields are set
/// here) in front.
pub async fn encrypt(
    input: &Path,
    output: &Path,
    key: &Zeroizing<[u8; 32]>,
    mut header: EnvelopeHeader,
) -> std::io::Result<()> {
    let mut src = tokio::fs::File::open(input).await?;
    header.size = src.metadata().await?.len();
    if header.size >= segments::MAX_PIECE_LEN {
        return Err(invalid(
            "the file is larger than one envelope can seal (256 TiB)",
        ));
    }
    header.segment_size = segments::SEGMENT_LEN as u64;
    let piece = PieceSeal::fresh(0);
    header.nonce_prefix = hex::encode(piece.nonce_prefix);
    let binding = hex_array::<16>(&header.binding)?;
    let text = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    let mut out = tokio::fs::File::create(output).await?;
    out.write_all(MAGIC).await?;
    out.write_all(&(text.len() as u32).to_be_bytes()).await?;
    out.write_all(&text).await?;
    let mut sealer = Sealer::new(ObjectCipher::new(key, binding), piece);
    let mut buf = vec![0u8; segments::SEGMENT_LEN];
    let mut sealed = BytesMut::new();
    let mut seen = 0u64;
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        seen += n as u64;
        sealer.push(&buf[..n], &mut sealed);
        out.write_all(&sealed.split()).await?;
    }
    if seen != header.size {
        return Err(invalid("the input changed size while it was encrypted"));
    }
    sealer.finish(&mut sealed);
    out.write_all(&sealed).await?;
    out.sync_all().await?;
    Ok(())
}

/// Reads the header of an envelope file.
pub async fn read_header(input: &Path) -> std::io::Result<(EnvelopeHeader, u64)> {
    let mut f = tokio::fs::File::open(input).await?;
    let mut magic = [0u8; 18];
    f.read_exact(&mut magic).await?;
    if &magic != MAGIC {
        return Err(invalid("not a sluice envelope file"));
    }
    let len = f.read_u32().await?;
    if len > MAX_HEADER {
        return Err(invalid("envelope header is too large"));
    }
    let mut text = vec![0u8; len as usize];
    f.read_exact(&mut text).await?;
    let header: EnvelopeHeader =
        serde_json::from_slice(&text).map_err(|_| invalid("envelope header is not valid JSON"))?;
    if header.segment_size != segments::SEGMENT_LEN as u64 {
        return Err(invalid("unsupported segment size"));
    }
    Ok((header, 18 + 4 + len as u64))
}

/// Opens the sealed body of `input` (after its header) into `output`.
pub async fn decrypt(
    input: &Path,
    output: &Path,
    key: &Zeroizing<[u8; 32]>,
    header: &EnvelopeHeader,
    body_offset: u64,
) -> std::io::Result<()> {
    let binding = hex_array::<16>(&header.binding)?;
    let piece = PieceSeal {
        nonce_prefix: hex_array::<8>(&header.nonce_prefix)?,
        part_number: 0,
    };
    let mut f = tokio::fs::File::open(input).await?;
    let total = f.metadata().await?.len();
    if header.size >= segments::MAX_PIECE_LEN
        || total.saturating_sub(body_offset) != segments::sealed_len(header.size)
    {
        return Err(invalid("the envelope body is truncated or padded"));
    }
    tokio::io::AsyncSeekExt::seek(&mut f, std::io::SeekFrom::Start(body_offset)).await?;
    let raw = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024);
    let range = sealed_range(header.size, 0, header.size);
    let mut plain = OpenStream::new(
        raw,
        ObjectCipher::new(key, binding),
        piece,
        header.size,
        range,
        header.size,
    );
    let mut out = tokio::fs::File::create(output).await?;
    while let Some(chunk) = plain.next().await {
        out.write_all(&chunk?).await?;
    }
    out.sync_all().await?;
    Ok(())
}
