//! bzip2 input, streamed: a sequential decoder for single-stream files, and a parallel one for
//! Wikipedia's `-multistream` dumps, whose many small streams can be decompressed independently.
//!
//! Stream starts are found by their byte-aligned header, `BZh[1-9]` followed by the block magic
//! `1AY&SY`. A false match inside compressed data (a 10-byte pattern, about 1 in 2^72 per byte)
//! would surface as a decode error naming the offset, never as wrong text.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use bzip2::read::{BzDecoder, MultiBzDecoder};
use rayon::prelude::*;

/// Compressed bytes read per step of the parallel decoder.
const CHUNK: usize = 2 << 20;
/// A "stream" larger than this is not a multistream dump's (those hold 100 pages each).
const MAX_STREAM: usize = 256 << 20;

/// Offsets of stream headers in `data`.
pub fn stream_starts(data: &[u8]) -> Vec<usize> {
    const MAGIC: &[u8] = b"1AY&SY";
    memchr::memmem::find_iter(data, MAGIC)
        .filter(|&m| {
            m >= 4 && &data[m - 4..m - 1] == b"BZh" && (b'1'..=b'9').contains(&data[m - 1])
        })
        .map(|m| m - 4)
        .collect()
}

/// Whether `head` (the start of a file) holds at least two stream headers: a multistream dump.
pub fn is_multistream(head: &[u8]) -> bool {
    stream_starts(head).len() >= 2
}

/// Sequential decoding of one or more concatenated streams; errors name the compressed offset.
pub struct Sequential<R: Read> {
    decoder: MultiBzDecoder<R>,
    /// Compressed bytes read so far, counted by the caller's reader.
    count: Arc<AtomicU64>,
}

impl<R: Read> Sequential<R> {
    pub fn new(input: R, count: Arc<AtomicU64>) -> Self {
        Sequential {
            decoder: MultiBzDecoder::new(input),
            count,
        }
    }
}

impl<R: Read> Read for Sequential<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.decoder.read(buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "bz2 data corrupt or truncated near compressed byte {}: {e}",
                    self.count.load(Ordering::Relaxed)
                ),
            )
        })
    }
}

/// Parallel decoding of a multistream file: a thread reads compressed chunks, cuts them at stream
/// starts, decompresses the complete streams in parallel on the current rayon pool, and hands the
/// text on in order through a bounded channel (at most two chunks of text in flight).
pub struct Parallel {
    rx: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    failed: bool,
}

impl Parallel {
    pub fn new<R: Read + Send + 'static>(mut input: R, pool: Arc<rayon::ThreadPool>) -> Self {
        let (tx, rx) = sync_channel(2);
        std::thread::spawn(move || {
            let mut pending: Vec<u8> = Vec::new();
            let mut pending_offset = 0u64; // compressed offset of pending[0]
            let mut eof = false;
            while !eof {
                let mut chunk = Vec::with_capacity(CHUNK);
                match (&mut input).take(CHUNK as u64).read_to_end(&mut chunk) {
                    Ok(0) => eof = true,
                    Ok(_) => pending.extend_from_slice(&chunk),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
                let mut cuts = stream_starts(&pending);
                if cuts.first() != Some(&0) && !pending.is_empty() {
                    let msg = format!("no bz2 stream header at compressed byte {pending_offset}");
                    let _ = tx.send(Err(io::Error::new(io::ErrorKind::InvalidData, msg)));
                    return;
                }
                if eof {
                    cuts.push(pending.len());
                }
                if cuts.len() < 2 {
                    if pending.len() > MAX_STREAM {
                        let msg = format!(
                            "a bz2 stream at compressed byte {pending_offset} is over {} MB: not a multistream dump; use one thread",
                            MAX_STREAM >> 20
                        );
                        let _ = tx.send(Err(io::Error::new(io::ErrorKind::InvalidData, msg)));
                        return;
                    }
                    continue;
                }
                let last = *cuts.last().unwrap_or(&0);
                let pieces: Vec<(u64, &[u8])> = cuts
                    .windows(2)
                    .map(|w| (pending_offset + w[0] as u64, &pending[w[0]..w[1]]))
                    .collect();
                let decoded: Vec<io::Result<Vec<u8>>> = pool.install(|| {
                    pieces
                        .par_iter()
                        .map(|&(off, p)| decode_stream(off, p))
                        .collect()
                });
                let mut text = Vec::new();
                for d in decoded {
                    match d {
                        Ok(t) => text.extend_from_slice(&t),
                        Err(e) => {
                            let _ = tx.send(Ok(text));
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
                if tx.send(Ok(text)).is_err() {
                    return;
                }
                pending.drain(..last);
                pending_offset += last as u64;
            }
        });
        Parallel {
            rx,
            current: Vec::new(),
            pos: 0,
            failed: false,
        }
    }
}

/// Decompresses one complete stream; an error names the stream's compressed offset.
fn decode_stream(offset: u64, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 5);
    BzDecoder::new(data).read_to_end(&mut out).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("bz2 stream at compressed byte {offset} is corrupt or truncated: {e}"),
        )
    })?;
    Ok(out)
}

impl Read for Parallel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.failed {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.failed = true;
                    return Err(e);
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
