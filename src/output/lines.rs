//! Splitting a byte stream into log lines.
//!
//! A line is emitted when its newline arrives; a line longer than the limit is
//! emitted in pieces (cut at a UTF-8 boundary when one is near, so text stays
//! text); a partial line is emitted once it has waited longer than the flush
//! interval, so a progress bar without newlines still reaches the watcher.

use std::time::{Duration, Instant};

pub struct LineSplitter {
    buf: Vec<u8>,
    limit: usize,
    since: Option<Instant>,
}

impl LineSplitter {
    pub fn new(limit: usize) -> LineSplitter {
        LineSplitter {
            buf: Vec::new(),
            limit,
            since: None,
        }
    }

    /// Feed bytes; `emit` gets every complete line (newline included) and every full piece.
    pub fn push(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(&[u8])) {
        while !bytes.is_empty() {
            let room = self.limit - self.buf.len();
            let window = &bytes[..bytes.len().min(room)];
            if let Some(nl) = memchr(window) {
                let (line, rest) = bytes.split_at(nl + 1);
                if self.buf.is_empty() {
                    emit(line);
                } else {
                    self.buf.extend_from_slice(line);
                    emit(&self.buf);
                    self.buf.clear();
                }
                self.since = None;
                bytes = rest;
            } else if window.len() == room {
                self.buf.extend_from_slice(window);
                bytes = &bytes[room..];
                // Always make progress, even when the whole buffer is one partial character.
                let cut = match utf8_cut(&self.buf) {
                    0 => self.buf.len(),
                    cut => cut,
                };
                emit(&self.buf[..cut]);
                self.buf.drain(..cut);
                self.since = (!self.buf.is_empty()).then(Instant::now);
            } else {
                if self.buf.is_empty() {
                    self.since = Some(Instant::now());
                }
                self.buf.extend_from_slice(window);
                bytes = &[];
            }
        }
    }

    /// Emit a partial line that has waited `interval` or longer.
    pub fn flush_stale(&mut self, interval: Duration, emit: &mut dyn FnMut(&[u8])) {
        if self.since.is_some_and(|t| t.elapsed() >= interval) {
            self.finish(emit);
        }
    }

    /// Emit whatever is left (end of stream).
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
        self.since = None;
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// Where to cut a full buffer: before an incomplete UTF-8 sequence at its end, if any.
fn utf8_cut(buf: &[u8]) -> usize {
    let len = buf.len();
    for back in 1..=3.min(len) {
        let b = buf[len - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return len,
        };
        return if need > back { len - back } else { len };
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limit: usize, chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new(limit);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |l| out.push(l.to_vec()));
        }
        s.finish(&mut |l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn lines_are_joined_across_reads_and_split_at_the_limit() {
        assert_eq!(
            run(100, &[b"ab", b"c\nd", b"e\n"]),
            vec![b"abc\n".to_vec(), b"de\n".to_vec()]
        );
        assert_eq!(
            run(4, &[b"abcdefghij\n"]),
            vec![b"abcd".to_vec(), b"efgh".to_vec(), b"ij\n".to_vec()]
        );
        assert_eq!(run(100, &[b"tail"]), vec![b"tail".to_vec()]);
    }

    #[test]
    fn pieces_do_not_cut_a_utf8_character() {
        // "aé" is 61 C3 A9: a limit of 2 must not split C3 from A9.
        let out = run(2, &["aéb\n".as_bytes()]);
        assert_eq!(out[0], b"a");
        assert!(
            out.iter().all(|p| std::str::from_utf8(p).is_ok()),
            "{out:?}"
        );
        assert_eq!(out.concat(), "aéb\n".as_bytes());
    }

    #[test]
    fn every_byte_comes_out_once_in_order() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| if i % 37 == 0 { b'\n' } else { (i % 251) as u8 })
            .collect();
        for limit in [1, 3, 16, 4096] {
            for step in [1, 7, 100, 5000] {
                let chunks: Vec<&[u8]> = data.chunks(step).collect();
                assert_eq!(
                    run(limit, &chunks).concat(),
                    data,
                    "limit {limit} step {step}"
                );
            }
        }
    }
}
