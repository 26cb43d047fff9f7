//! Log bytes as they arrive and as they are stored: as sent, or as the
//! Zstandard frame a runner compressed them into.
//!
//! A runner offered `log_encodings: ["zstd"]` sends each `PUT log` body as
//! Zstandard (`Content-Encoding: zstd`). The control plane decodes the body,
//! bounded, so that a few bytes cannot expand into more than a plain body may
//! hold (a frame that declares its size, as a runner's do, in one pass into a
//! buffer of that size), to check it and to learn its length; and when all of it is new it
//! stores the frame itself. A log then costs its compressed size in the
//! database, on disk and in replication, and is decoded only when it is read.
//! Offsets stay those of the plain log, so nothing else in the protocol sees
//! the encoding.

use std::borrow::Cow;
use std::io::Read;

use sortie_protocol::LOG_ENCODING_ZSTD;

use super::{Outcome, Refusal};

/// The encoding column of a plain chunk.
pub const IDENTITY: &str = "identity";

/// The largest window a frame may ask the decoder for (8 MiB, a body's limit):
/// the default would let a small hostile frame make it allocate 128 MiB.
const WINDOW_LOG_MAX: u32 = 23;

/// One chunk of a log to store, at a plain offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    Plain(&'a [u8]),
    /// A Zstandard frame, checked to decode to the bytes it stands for.
    Zstd(&'a [u8]),
}

impl<'a> Chunk<'a> {
    /// The value of the encoding column.
    pub fn encoding(self) -> &'static str {
        match self {
            Chunk::Plain(_) => IDENTITY,
            Chunk::Zstd(_) => LOG_ENCODING_ZSTD,
        }
    }

    /// The bytes to store.
    pub fn stored(self) -> &'a [u8] {
        match self {
            Chunk::Plain(bytes) | Chunk::Zstd(bytes) => bytes,
        }
    }
}

/// The plain bytes of a stored chunk, decoded the way it was when it was
/// taken: in one pass when it is one frame that declares its size (such a
/// frame is not held to a stream decoder's window and block limits).
pub fn load<'a>(encoding: &str, stored: &'a [u8]) -> Outcome<Cow<'a, [u8]>> {
    match encoding {
        IDENTITY => Ok(Cow::Borrowed(stored)),
        LOG_ENCODING_ZSTD => match single_frame_size(stored) {
            Some(size) => usize::try_from(size)
                .map_err(std::io::Error::other)
                .and_then(|size| decode_whole(stored, size)),
            None => zstd::stream::decode_all(stored),
        }
        .map(Cow::Owned)
        .map_err(|e| Refusal::unavailable("decoding a stored log chunk", e)),
        other => Err(Refusal::Unavailable(format!(
            "a stored log chunk has the unknown encoding {other:?}"
        ))),
    }
}

/// A `PUT log` body as it arrived. It is decoded only once the request has
/// been found to hold the job's lease: a caller without one costs no work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upload {
    Plain(Vec<u8>),
    /// `Content-Encoding: zstd`, to decode into at most `limit` plain bytes.
    Zstd {
        frame: Vec<u8>,
        limit: usize,
    },
}

impl Upload {
    pub fn decode(&self) -> Outcome<LogBody<'_>> {
        let (frame, limit) = match self {
            Upload::Plain(bytes) => return Ok(LogBody::plain(bytes)),
            Upload::Zstd { frame, limit } => (frame, *limit),
        };
        let corrupt = |e: std::io::Error| Refusal::Invalid(format!("a zstd log body: {e}"));
        let too_large = || {
            Refusal::TooLarge(format!(
                "a zstd log body decodes to more than {limit} bytes"
            ))
        };
        if let Some(size) = single_frame_size(frame) {
            if size > limit as u64 {
                return Err(too_large());
            }
            // The same window limit as the stream decoder's below.
            if window_size(frame).is_some_and(|w| w > 1 << WINDOW_LOG_MAX) {
                return Err(Refusal::Invalid(
                    "a zstd log body: its frame asks for a window past 8 MiB".into(),
                ));
            }
            let plain = decode_whole(frame, size as usize).map_err(corrupt)?;
            return Ok(LogBody {
                plain: Cow::Owned(plain),
                frame: Some(frame),
            });
        }
        let mut decoder = zstd::stream::read::Decoder::with_buffer(frame.as_slice())
            .map_err(|e| Refusal::unavailable("starting a zstd decoder", e))?;
        decoder.window_log_max(WINDOW_LOG_MAX).map_err(corrupt)?;
        let mut plain = Vec::new();
        decoder
            .take(limit as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(corrupt)?;
        if plain.len() > limit {
            return Err(too_large());
        }
        Ok(LogBody {
            plain: Cow::Owned(plain),
            frame: Some(frame),
        })
    }
}

/// The window a frame asks for (RFC 8878, 3.1.1.1.2); `None` for a
/// single-segment frame, whose window is its declared size.
fn window_size(frame: &[u8]) -> Option<u64> {
    let descriptor = *frame.get(4)?;
    if descriptor & 0x20 != 0 {
        return None;
    }
    let window = *frame.get(5)?;
    let base = 1u64 << (10 + u32::from(window >> 3));
    Some(base + base / 8 * u64::from(window & 7))
}

/// The plain size `frame` declares, when it is one whole frame that declares
/// it (as a runner's frames do).
fn single_frame_size(frame: &[u8]) -> Option<u64> {
    let whole = zstd::zstd_safe::find_frame_compressed_size(frame).ok()? == frame.len();
    whole
        .then(|| zstd::zstd_safe::get_frame_content_size(frame).ok()?)
        .flatten()
}

/// Decode one frame of a declared `size` in one pass, into a buffer of that
/// size: no window to allocate and no buffer grown by steps, with a decoder
/// kept per thread. A frame that does not hold what it declares is an error.
fn decode_whole(frame: &[u8], size: usize) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static DECODER: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    DECODER.with_borrow_mut(|decoder| {
        let decoder = match decoder {
            Some(decoder) => decoder,
            None => decoder.insert(zstd::bulk::Decompressor::new()?),
        };
        let mut plain = Vec::with_capacity(size);
        decoder.decompress_to_buffer(frame, &mut plain)?;
        if plain.len() != size {
            return Err(std::io::Error::other(format!(
                "the frame declares {size} bytes and holds {}",
                plain.len()
            )));
        }
        Ok(plain)
    })
}

/// A decoded `PUT log` body: its plain bytes and, when it came compressed,
/// the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBody<'a> {
    plain: Cow<'a, [u8]>,
    frame: Option<&'a [u8]>,
}

impl<'a> LogBody<'a> {
    pub fn plain(bytes: &'a [u8]) -> LogBody<'a> {
        LogBody {
            plain: Cow::Borrowed(bytes),
            frame: None,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.plain
    }

    /// What to store of the body from its byte `skip` on: the frame when that
    /// is all of it and smaller than it, else the plain bytes (a frame of
    /// padding, or of bytes that do not compress, costs no more than they do).
    pub fn chunk(&self, skip: usize) -> Chunk<'_> {
        match self.frame {
            Some(frame) if skip == 0 && frame.len() < self.plain.len() => Chunk::Zstd(frame),
            _ => Chunk::Plain(&self.plain[skip..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> Vec<u8> {
        zstd::bulk::compress(bytes, 1).unwrap()
    }

    fn zstd(frame: Vec<u8>, limit: usize) -> Upload {
        Upload::Zstd { frame, limit }
    }

    #[test]
    fn a_frame_is_stored_whole_and_loads_as_its_plain_bytes() {
        let log = b"{\"stream\":\"stdout\",\"line\":\"x\"}\n".repeat(1000);
        let upload = zstd(frame(&log), 1 << 20);
        let body = upload.decode().unwrap();
        assert_eq!(body.bytes(), log.as_slice());
        let whole = body.chunk(0);
        assert_eq!(whole.encoding(), "zstd");
        assert!(
            whole.stored().len() < log.len() / 10,
            "it is stored compressed"
        );
        assert_eq!(load(whole.encoding(), whole.stored()).unwrap(), &log[..]);
        // Part of it already held: only the new bytes, plain.
        assert_eq!(body.chunk(10), Chunk::Plain(&log[10..]));
        assert_eq!(load(IDENTITY, b"abc").unwrap(), &b"abc"[..]);
        assert!(load("br", b"abc").is_err());
        // A frame no smaller than what it decodes to is stored plain.
        let tiny = zstd(frame(b"ab"), 1 << 20);
        assert_eq!(tiny.decode().unwrap().chunk(0), Chunk::Plain(b"ab"));
    }

    #[test]
    fn a_body_that_expands_past_the_limit_or_is_not_zstd_is_refused() {
        let bomb = frame(&vec![0u8; 4 << 20]);
        assert!(bomb.len() < 1024);
        assert!(matches!(
            zstd(bomb.clone(), 1 << 20).decode(),
            Err(Refusal::TooLarge(_))
        ));
        assert_eq!(zstd(bomb, 4 << 20).decode().unwrap().bytes().len(), 4 << 20);
        assert!(matches!(
            zstd(b"not zstd".to_vec(), 1 << 20).decode(),
            Err(Refusal::Invalid(_))
        ));
        let mut cut = frame(&b"0123456789".repeat(100));
        cut.truncate(cut.len() - 3);
        assert!(matches!(
            zstd(cut, 1 << 20).decode(),
            Err(Refusal::Invalid(_))
        ));
    }

    /// A frame that does not say how much it holds is decoded as a stream,
    /// and one that asks for a window past 8 MiB is refused; one that says
    /// is decoded in one pass into that much, and needs no window.
    #[test]
    fn a_frame_asking_for_a_window_past_the_limit_is_refused() {
        let wide = |declared: bool| {
            let mut encoder = zstd::bulk::Compressor::new(1).unwrap();
            encoder
                .set_parameter(zstd::zstd_safe::CParameter::WindowLog(27))
                .unwrap();
            encoder
                .set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(declared))
                .unwrap();
            encoder
        };
        // More than 8 MiB that does not compress: the frame needs a window that wide.
        let data: Vec<u8> = (0..9u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let undeclared = wide(false).compress(&data).unwrap();
        assert_eq!(single_frame_size(&undeclared), None);
        assert!(matches!(
            zstd(undeclared, 64 << 20).decode(),
            Err(Refusal::Invalid(_))
        ));
        let declared = wide(true).compress(&data).unwrap();
        assert_eq!(single_frame_size(&declared), Some(9 << 20));
        assert_eq!(
            zstd(declared.clone(), 64 << 20).decode().unwrap().bytes(),
            &data[..]
        );
        assert!(matches!(
            zstd(declared, 8 << 20).decode(),
            Err(Refusal::TooLarge(_))
        ));
    }

    /// A frame of `size` bytes of `B` in one RLE block, with a 4-byte content
    /// size and a window of 2^`window_log`, made by hand.
    fn rle_frame(window_log: u8, size: u32) -> Vec<u8> {
        let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x80, (window_log - 10) << 3];
        frame.extend(size.to_le_bytes());
        let block = (size << 3) | (1 << 1) | 1; // the last block, RLE
        frame.extend(&block.to_le_bytes()[..3]);
        frame.push(b'B');
        frame
    }

    /// A frame that asks for a window past 8 MiB is refused even when it
    /// declares its size, as the stream decoder refuses it.
    #[test]
    fn a_declared_frame_asking_for_a_wide_window_is_refused() {
        assert!(matches!(
            zstd(rle_frame(31, 1000), 1 << 20).decode(),
            Err(Refusal::Invalid(_))
        ));
        let within = zstd(rle_frame(23, 1000), 1 << 20);
        assert_eq!(within.decode().unwrap().bytes(), &[b'B'; 1000][..]);
    }

    /// A frame taken in one pass loads back the same way, even one a stream
    /// decoder refuses: here a 1 MiB block beside a 64 KiB window.
    #[test]
    fn a_frame_taken_in_one_pass_loads_back() {
        let frame = rle_frame(16, 1 << 20);
        assert!(zstd::stream::decode_all(frame.as_slice()).is_err());
        let upload = zstd(frame, 8 << 20);
        let body = upload.decode().unwrap();
        assert_eq!(body.bytes(), &vec![b'B'; 1 << 20][..]);
        let stored = body.chunk(0);
        assert_eq!(stored.encoding(), "zstd");
        assert_eq!(
            load(stored.encoding(), stored.stored()).unwrap(),
            body.bytes()
        );
    }

    /// Two frames one after the other are one body: decoded as a stream.
    #[test]
    fn a_body_of_two_frames_decodes_to_both() {
        let mut two = frame(b"first\n");
        two.extend(frame(b"second\n"));
        assert_eq!(single_frame_size(&two), None);
        let upload = zstd(two, 1 << 20);
        assert_eq!(upload.decode().unwrap().bytes(), b"first\nsecond\n");
    }
}
