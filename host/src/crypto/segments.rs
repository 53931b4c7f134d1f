//! The sealed body format: a body is cut into fixed plaintext segments of [`SEGMENT_LEN`] bytes
//! (the last one shorter, an empty body one empty segment), each sealed with AES-256-GCM under
//! the object's data key and followed by its 16-byte tag.
//!
//! - Nonce (12 bytes): the piece's random 8-byte prefix, then the segment index (u32 BE). A piece
//!   is a single-PUT body or one upload of one multipart part; every piece gets a fresh prefix,
//!   so a part uploaded again never reuses a (key, nonce) pair.
//! - Associated data (29 bytes): `b"slc1"`, the object's or upload's 16-byte binding, the part
//!   number (u32 BE, 0 for a single PUT), the segment index (u32 BE) and a last-segment flag.
//!   Reordered, spliced (from another object, part or position) or truncated segments fail.
//!
//! A piece of `n` plaintext bytes takes [`sealed_len`]`(n)` bytes on disk, so any plaintext range
//! maps to whole sealed segments that can be read and opened on their own.
//!
//! The segments are plain AES-256-GCM, sealed here with aws-lc (already linked for TLS): on this
//! machine it seals 11 GB/s per core against 1.3 GB/s for the `aes-gcm` crate, which made an
//! encrypted GET reach only 35 % of a plaintext one. A unit test opens aws-lc's segments with
//! `aes-gcm` to keep the two interchangeable; key wrapping uses `aes-gcm`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use bytes::{Bytes, BytesMut};
use futures::Stream;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Plaintext bytes per segment.
pub const SEGMENT_LEN: usize = 64 * 1024;
/// Largest piece the format can seal: 2^32 segments (the nonce's segment counter is 32 bits).
pub const MAX_PIECE_LEN: u64 = (SEGMENT_LEN as u64) << 32;
/// AES-GCM tag bytes after each segment.
pub const TAG_LEN: usize = 16;
const SEALED_SEGMENT: u64 = (SEGMENT_LEN + TAG_LEN) as u64;
const AAD_MAGIC: &[u8; 4] = b"slc1";

/// Number of segments of a piece of `n` plaintext bytes (an empty piece has one).
pub fn segment_count(n: u64) -> u64 {
    n.div_ceil(SEGMENT_LEN as u64).max(1)
}

/// Bytes on disk for a piece of `n` plaintext bytes.
pub fn sealed_len(n: u64) -> u64 {
    n + TAG_LEN as u64 * segment_count(n)
}

/// How one piece was sealed: what a reader needs besides the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceSeal {
    #[serde(with = "hex_bytes")]
    pub nonce_prefix: [u8; 8],
    /// 0 for a single PUT, else the multipart part number.
    pub part_number: u32,
}

impl PieceSeal {
    /// A fresh random nonce prefix for a new piece.
    pub fn fresh(part_number: u32) -> PieceSeal {
        let mut nonce_prefix = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut nonce_prefix);
        PieceSeal {
            nonce_prefix,
            part_number,
        }
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 8], D::Error> {
        let text = String::deserialize(d)?;
        let raw = hex::decode(text).map_err(serde::de::Error::custom)?;
        <[u8; 8]>::try_from(raw).map_err(|_| serde::de::Error::custom("nonce prefix length"))
    }
}

/// A data key with its object binding. Only the expanded key is kept (aws-lc cleanses it when
/// it is freed).
#[derive(Clone)]
pub struct ObjectCipher {
    cipher: Arc<LessSafeKey>,
    binding: [u8; 16],
}

impl std::fmt::Debug for ObjectCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObjectCipher(..)")
    }
}

/// A sealed segment failed to open: wrong key, or bytes changed, moved or cut.
#[derive(Debug, thiserror::Error)]
#[error("encrypted object data failed authentication (segment {segment})")]
pub struct OpenError {
    pub segment: u64,
}

impl ObjectCipher {
    pub fn new(key: &Zeroizing<[u8; 32]>, binding: [u8; 16]) -> ObjectCipher {
        let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref())
            .expect("a 32-byte key is a valid AES-256-GCM key");
        ObjectCipher {
            cipher: Arc::new(LessSafeKey::new(unbound)),
            binding,
        }
    }

    fn nonce(piece: &PieceSeal, index: u32) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&piece.nonce_prefix);
        n[8..].copy_from_slice(&index.to_be_bytes());
        n
    }

    fn aad(&self, piece: &PieceSeal, index: u32, last: bool) -> [u8; 29] {
        let mut a = [0u8; 29];
        a[..4].copy_from_slice(AAD_MAGIC);
        a[4..20].copy_from_slice(&self.binding);
        a[20..24].copy_from_slice(&piece.part_number.to_be_bytes());
        a[24..28].copy_from_slice(&index.to_be_bytes());
        a[28] = last as u8;
        a
    }

    /// Seals `plain` as segment `index` and appends ciphertext and tag to `out`.
    pub fn seal_segment(
        &self,
        piece: &PieceSeal,
        index: u32,
        last: bool,
        plain: &[u8],
        out: &mut BytesMut,
    ) {
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(Self::nonce(piece, index)),
                Aad::from(self.aad(piece, index, last)),
                &mut out[start..],
            )
            .expect("AES-GCM sealing of a 64 KiB segment cannot fail");
        out.extend_from_slice(tag.as_ref());
    }

    /// Opens one sealed segment in place; the plaintext is the first `len - TAG_LEN` bytes.
    pub fn open_segment(
        &self,
        piece: &PieceSeal,
        index: u32,
        last: bool,
        sealed: &mut [u8],
    ) -> Result<usize, OpenError> {
        let err = OpenError {
            segment: index as u64,
        };
        if sealed.len() < TAG_LEN {
            return Err(err);
        }
        let n = sealed.len() - TAG_LEN;
        self.cipher
            .open_in_place(
                Nonce::assume_unique_for_key(Self::nonce(piece, index)),
                Aad::from(self.aad(piece, index, last)),
                sealed,
            )
            .map_err(|_| err)?;
        Ok(n)
    }
}

/// Seals a piece as its plaintext streams in.
pub struct Sealer {
    cipher: ObjectCipher,
    piece: PieceSeal,
    pending: BytesMut,
    index: u32,
}

impl Sealer {
    pub fn new(cipher: ObjectCipher, piece: PieceSeal) -> Sealer {
        Sealer {
            cipher,
            piece,
            pending: BytesMut::with_capacity(SEGMENT_LEN + 1),
            index: 0,
        }
    }

    pub fn piece(&self) -> PieceSeal {
        self.piece
    }

    /// Takes plaintext; appends every segment known not to be the last to `out`.
    pub fn push(&mut self, mut chunk: &[u8], out: &mut BytesMut) {
        while !chunk.is_empty() {
            // A full segment is sealed only once a byte beyond it shows it is not the last.
            if self.pending.len() == SEGMENT_LEN {
                self.seal_pending(false, out);
            }
            let take = (SEGMENT_LEN - self.pending.len()).min(chunk.len());
            self.pending.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
    }

    fn seal_pending(&mut self, last: bool, out: &mut BytesMut) {
        self.cipher
            .seal_segment(&self.piece, self.index, last, &self.pending, out);
        self.pending.clear();
        self.index = self.index.wrapping_add(1);
    }

    /// Seals the last segment (possibly empty) and appends it to `out`.
    pub fn finish(mut self, out: &mut BytesMut) {
        self.seal_pending(true, out);
    }
}

/// Where a plaintext range of a piece lies on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedRange {
    /// Byte offset and length of the whole sealed segments that cover the range.
    pub offset: u64,
    pub len: u64,
    pub first_segment: u64,
    /// Plaintext bytes to drop from the first opened segment.
    pub skip: u64,
}

/// The sealed segments covering plaintext `from..from+len` of a piece of `piece_len` bytes.
pub fn sealed_range(piece_len: u64, from: u64, len: u64) -> SealedRange {
    let seg = SEGMENT_LEN as u64;
    let first = from / seg;
    let last = if len == 0 {
        first
    } else {
        (from + len - 1) / seg
    }
    .min(segment_count(piece_len) - 1);
    let end_plain = ((last + 1) * seg).min(piece_len);
    let offset = first * SEALED_SEGMENT;
    let sealed_end = end_plain + (last + 1) * TAG_LEN as u64;
    SealedRange {
        offset,
        len: sealed_end - offset,
        first_segment: first,
        skip: from - first * seg,
    }
}

/// A stream of sealed bytes from [`sealed_range`] turned back into the requested plaintext.
pub struct OpenStream<S> {
    inner: S,
    cipher: ObjectCipher,
    piece: PieceSeal,
    buf: BytesMut,
    index: u64,
    segments: u64,
    piece_len: u64,
    skip: u64,
    remaining: u64,
    done: bool,
}

impl<S> OpenStream<S> {
    pub fn new(
        inner: S,
        cipher: ObjectCipher,
        piece: PieceSeal,
        piece_len: u64,
        range: SealedRange,
        len: u64,
    ) -> OpenStream<S> {
        OpenStream {
            inner,
            cipher,
            piece,
            buf: BytesMut::new(),
            index: range.first_segment,
            segments: segment_count(piece_len),
            piece_len,
            skip: range.skip,
            remaining: len,
            done: len == 0,
        }
    }

    /// Sealed size of the segment being read.
    fn current_sealed_len(&self) -> usize {
        let seg = SEGMENT_LEN as u64;
        let plain = (self.piece_len - (self.index * seg).min(self.piece_len)).min(seg);
        plain as usize + TAG_LEN
    }

    /// Opens the next segment if its bytes are all buffered.
    /// Opens every segment whose bytes are all buffered, in place, and hands their plaintext
    /// out as one chunk (moved down over the tags between them), so a chunk read from disk
    /// becomes one chunk for the socket.
    fn open_ready(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        let mut pos = 0usize;
        let mut out = 0usize;
        while self.remaining > 0 {
            let need = self.current_sealed_len();
            if self.buf.len() - pos < need {
                break;
            }
            let last = self.index + 1 == self.segments;
            let Ok(index) = u32::try_from(self.index) else {
                self.done = true;
                return Some(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "encrypted piece has more segments than the format allows",
                )));
            };
            let opened =
                self.cipher
                    .open_segment(&self.piece, index, last, &mut self.buf[pos..pos + need]);
            let n = match opened {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    return Some(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)));
                }
            };
            self.index += 1;
            let skip = (self.skip as usize).min(n);
            self.skip = 0;
            let take = ((n - skip) as u64).min(self.remaining) as usize;
            if pos + skip != out {
                self.buf.copy_within(pos + skip..pos + skip + take, out);
            }
            out += take;
            self.remaining -= take as u64;
            pos += need;
        }
        if pos == 0 {
            return None;
        }
        let mut chunk = self.buf.split_to(pos);
        chunk.truncate(out);
        if self.remaining == 0 {
            self.done = true;
        }
        Some(Ok(chunk.freeze()))
    }
}

impl<S> Stream for OpenStream<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if let Some(item) = this.open_ready() {
                return Poll::Ready(Some(item));
            }
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if this.buf.is_empty() {
                        // A chunk nobody else holds is opened in place, without a copy.
                        this.buf = chunk
                            .try_into_mut()
                            .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
                    } else {
                        this.buf.extend_from_slice(&chunk);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "encrypted object data is truncated",
                    ))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn cipher(b: u8) -> ObjectCipher {
        ObjectCipher::new(&Zeroizing::new([7u8; 32]), [b; 16])
    }

    fn seal_all(c: &ObjectCipher, piece: &PieceSeal, data: &[u8], chunk: usize) -> Vec<u8> {
        let mut s = Sealer::new(c.clone(), *piece);
        let mut out = BytesMut::new();
        for part in data.chunks(chunk.max(1)) {
            s.push(part, &mut out);
        }
        s.finish(&mut out);
        out.to_vec()
    }

    async fn open(
        c: &ObjectCipher,
        piece: &PieceSeal,
        sealed: &[u8],
        piece_len: u64,
        from: u64,
        len: u64,
    ) -> Result<Vec<u8>, std::io::Error> {
        let r = sealed_range(piece_len, from, len);
        let raw = Bytes::copy_from_slice(&sealed[r.offset as usize..(r.offset + r.len) as usize]);
        let chunks: Vec<Result<Bytes, std::io::Error>> = raw
            .chunks(1000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut s = OpenStream::new(
            futures::stream::iter(chunks),
            c.clone(),
            *piece,
            piece_len,
            r,
            len,
        );
        let mut out = Vec::new();
        while let Some(b) = s.next().await {
            out.extend_from_slice(&b?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn round_trips_every_size_and_range() {
        let c = cipher(1);
        let piece = PieceSeal::fresh(0);
        let seg = SEGMENT_LEN;
        for n in [0, 1, seg - 1, seg, seg + 1, 3 * seg, 3 * seg + 17] {
            let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            let sealed = seal_all(&c, &piece, &data, 5000);
            assert_eq!(sealed.len() as u64, sealed_len(n as u64));
            assert_eq!(
                open(&c, &piece, &sealed, n as u64, 0, n as u64)
                    .await
                    .unwrap(),
                data
            );
            for (from, len) in [
                (0, 1),
                (seg - 1, 2),
                (seg, seg),
                (1, 2 * seg),
                (n / 2, n / 3),
            ] {
                if from + len > n || len == 0 {
                    continue;
                }
                let got = open(&c, &piece, &sealed, n as u64, from as u64, len as u64)
                    .await
                    .unwrap();
                assert_eq!(got, &data[from..from + len], "n={n} from={from} len={len}");
            }
        }
    }

    /// The segments are standard AES-256-GCM: the `aes-gcm` crate opens what aws-lc sealed.
    #[test]
    fn segments_open_with_the_aes_gcm_crate() {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let key = Zeroizing::new([7u8; 32]);
        let c = ObjectCipher::new(&key, [3; 16]);
        let piece = PieceSeal::fresh(4);
        let data: Vec<u8> = (0..SEGMENT_LEN + 10).map(|i| (i % 253) as u8).collect();
        let sealed = seal_all(&c, &piece, &data, 999);
        let other = aes_gcm::Aes256Gcm::new(key.as_ref().into());
        let first = &sealed[..SEALED_SEGMENT as usize];
        let plain = other
            .decrypt(
                aes_gcm::Nonce::from_slice(&ObjectCipher::nonce(&piece, 0)),
                Payload {
                    msg: first,
                    aad: &c.aad(&piece, 0, false),
                },
            )
            .unwrap();
        assert_eq!(plain, &data[..SEGMENT_LEN]);
        let last = &sealed[SEALED_SEGMENT as usize..];
        let plain = other
            .decrypt(
                aes_gcm::Nonce::from_slice(&ObjectCipher::nonce(&piece, 1)),
                Payload {
                    msg: last,
                    aad: &c.aad(&piece, 1, true),
                },
            )
            .unwrap();
        assert_eq!(plain, &data[SEGMENT_LEN..]);
    }

    #[tokio::test]
    async fn detects_tampering_reordering_splicing_and_truncation() {
        let c = cipher(1);
        let piece = PieceSeal::fresh(1);
        let n = 3 * SEGMENT_LEN;
        let data = vec![9u8; n];
        let sealed = seal_all(&c, &piece, &data, n);
        let whole = |s: &[u8], c: &ObjectCipher, p: &PieceSeal, len: u64| {
            let (s, c, p) = (s.to_vec(), c.clone(), *p);
            async move { open(&c, &p, &s, len, 0, len).await }
        };
        // A flipped bit.
        let mut bad = sealed.clone();
        bad[100] ^= 1;
        assert!(whole(&bad, &c, &piece, n as u64).await.is_err());
        // Two segments swapped.
        let s = SEALED_SEGMENT as usize;
        let mut swapped = sealed.clone();
        swapped[..s].copy_from_slice(&sealed[s..2 * s]);
        swapped[s..2 * s].copy_from_slice(&sealed[..s]);
        assert!(whole(&swapped, &c, &piece, n as u64).await.is_err());
        // Truncated to two segments: the second is not marked last.
        assert!(
            whole(&sealed[..2 * s], &c, &piece, 2 * SEGMENT_LEN as u64)
                .await
                .is_err()
        );
        // Another part number, another object binding, another key.
        let other_part = PieceSeal {
            part_number: 2,
            ..piece
        };
        assert!(whole(&sealed, &c, &other_part, n as u64).await.is_err());
        assert!(whole(&sealed, &cipher(2), &piece, n as u64).await.is_err());
        let other_key = ObjectCipher::new(&Zeroizing::new([8u8; 32]), [1; 16]);
        assert!(whole(&sealed, &other_key, &piece, n as u64).await.is_err());
        // The untouched body opens.
        assert_eq!(whole(&sealed, &c, &piece, n as u64).await.unwrap(), data);
    }
}
