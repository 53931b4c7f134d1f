//! Object body files: a hashed fan-out (`objects/ab/cd/<id>`) named by random ids, never by the
//! user's key, and the fsync rules that make a written file and its directory entry durable.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Directory (under the data dir) that holds body files.
pub const OBJECTS_DIR: &str = "objects";

/// A fresh random body id (32 lower-case hex characters).
pub fn new_body_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether `id` has the shape [`new_body_id`] makes, so it can never name a path outside the fan-out.
pub fn is_body_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `objects/ab/cd/<id>` under `root`. Panics on ids that do not come from [`new_body_id`].
pub fn body_path(root: &Path, id: &str) -> PathBuf {
    assert!(is_body_id(id), "body id `{id}` is not a generated id");
    root.join(OBJECTS_DIR)
        .join(&id[0..2])
        .join(&id[2..4])
        .join(id)
}

/// Flushes a directory's entries (new or removed names) to stable storage.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Starts writing `len` bytes at `offset` of `file` back to the disk without waiting, so a large
/// body's final fsync finds little left to flush and the disk works while the rest of the body
/// arrives. Advisory only: durability still comes from the fsync before the commit.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: the descriptor is open for the duration of the call (borrowed from `file`);
        // sync_file_range reads no memory of ours.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Creates the fan-out directories of `path` if needed, making each new entry durable.
pub fn ensure_parent(path: &Path) -> io::Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut p = parent;
    while !p.exists() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(pp) => p = pp,
            None => break,
        }
    }
    for dir in missing.iter().rev() {
        match std::fs::create_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        if let Some(pp) = dir.parent() {
            fsync_dir(pp)?;
        }
    }
    Ok(())
}

/// Removes a body file; a missing file is not an error.
pub fn remove_body(root: &Path, id: &str) {
    if !is_body_id(id) {
        return;
    }
    match std::fs::remove_file(body_path(root, id)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(body = id, error = %e, "cannot remove body file"),
    }
}

/// Every body id present on disk (for orphan collection at start-up), plus stray entries that are
/// not body files at all.
pub fn scan_bodies(root: &Path) -> io::Result<(Vec<String>, Vec<PathBuf>)> {
    let mut ids = Vec::new();
    let mut strays = Vec::new();
    let top = root.join(OBJECTS_DIR);
    if !top.exists() {
        return Ok((ids, strays));
    }
    for a in std::fs::read_dir(&top)? {
        let a = a?;
        if !a.file_type()?.is_dir() {
            strays.push(a.path());
            continue;
        }
        for b in std::fs::read_dir(a.path())? {
            let b = b?;
            if !b.file_type()?.is_dir() {
                strays.push(b.path());
                continue;
            }
            for f in std::fs::read_dir(b.path())? {
                let f = f?;
                match f.file_name().to_str() {
                    Some(name) if is_body_id(name) && f.file_type()?.is_file() => {
                        ids.push(name.to_string())
                    }
                    _ => strays.push(f.path()),
                }
            }
        }
    }
    Ok((ids, strays))
}

/// `len` bytes of a file from its current position, as a stream of chunks of `chunk` bytes (the
/// last one shorter). Each chunk is read on a blocking thread straight into the buffer that is
/// handed on (`tokio::fs::File` reads into a buffer of its own and copies out of it, which was
/// 13-16 % of the server's CPU during 256 MiB GETs), and the next chunk is read while the
/// previous one is being sent. A file that ends early is an `UnexpectedEof` error.
pub struct FileChunks {
    state: ChunkState,
    remaining: u64,
    chunk: usize,
}

enum ChunkState {
    /// Between reads: the file, at the start of the next chunk.
    Idle(File),
    /// A chunk being read on a blocking thread, which gives the file back with it.
    Reading(tokio::task::JoinHandle<io::Result<ChunkRead>>),
    /// Everything read, or an error given (nothing follows an error).
    Done,
}

/// The file back from a blocking read, and the chunk it gave.
type ChunkRead = (File, Vec<u8>);

impl FileChunks {
    pub fn new(file: File, len: u64, chunk: usize) -> FileChunks {
        FileChunks {
            state: ChunkState::Idle(file),
            remaining: len,
            chunk: chunk.max(1),
        }
    }

    /// What follows `file`: the next chunk being read, or done when nothing is left.
    fn read_next(&self, mut file: File) -> ChunkState {
        if self.remaining == 0 {
            return ChunkState::Done;
        }
        let n = self.remaining.min(self.chunk as u64);
        ChunkState::Reading(tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut buf = Vec::with_capacity(n as usize);
            (&mut file).take(n).read_to_end(&mut buf)?;
            Ok((file, buf))
        }))
    }
}

impl futures::Stream for FileChunks {
    type Item = io::Result<bytes::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.state, ChunkState::Done) {
                ChunkState::Idle(file) => this.state = this.read_next(file),
                ChunkState::Done => return Poll::Ready(None),
                ChunkState::Reading(mut reading) => {
                    let Poll::Ready(done) = std::pin::Pin::new(&mut reading).poll(cx) else {
                        this.state = ChunkState::Reading(reading);
                        return Poll::Pending;
                    };
                    // On an error the state stays `Done`.
                    let (file, buf) = match done.map_err(io::Error::other).and_then(|r| r) {
                        Ok((_, buf)) if buf.is_empty() => {
                            return Poll::Ready(Some(Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "body file is shorter than its metadata says",
                            ))));
                        }
                        Ok(read) => read,
                        Err(e) => return Poll::Ready(Some(Err(e))),
                    };
                    this.remaining -= buf.len() as u64;
                    // The next chunk is read while this one is sent.
                    this.state = this.read_next(file);
                    return Poll::Ready(Some(Ok(bytes::Bytes::from(buf))));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_paths_fan_out_by_id() {
        let id = new_body_id();
        let p = body_path(Path::new("/d"), &id);
        assert_eq!(
            p,
            PathBuf::from(format!("/d/objects/{}/{}/{}", &id[..2], &id[2..4], id))
        );
        assert!(!is_body_id("../../etc/passwd"));
    }

    fn chunks_of(content: &[u8], skip: u64, len: u64, chunk: usize) -> Vec<io::Result<Vec<u8>>> {
        use futures::StreamExt;
        use std::io::{Seek, SeekFrom, Write};
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(content).unwrap();
        f.seek(SeekFrom::Start(skip)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(
            FileChunks::new(f, len, chunk)
                .map(|r| r.map(|b| b.to_vec()))
                .collect(),
        )
    }

    #[test]
    fn file_chunks_read_exactly_the_range_in_order() {
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let got = chunks_of(&content, 100, 9_000, 4096);
        let sizes: Vec<usize> = got.iter().map(|c| c.as_ref().unwrap().len()).collect();
        assert_eq!(sizes, [4096, 4096, 808]);
        let joined: Vec<u8> = got.into_iter().flat_map(|c| c.unwrap()).collect();
        assert_eq!(joined, &content[100..9_100]);
        assert!(chunks_of(&content, 0, 0, 4096).is_empty());
    }

    #[test]
    fn file_chunks_report_a_file_shorter_than_promised() {
        let content = vec![7u8; 5_000];
        let got = chunks_of(&content, 0, 8_000, 4096);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap().len(), 4096);
        assert_eq!(got[1].as_ref().unwrap().len(), 904);
        let err = got[2].as_ref().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
