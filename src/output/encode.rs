//! Log format v1 encoding, written out by hand.
//!
//! This is the hottest code of a job that prints a lot: one call per output line.
//! A direct encoder into a reused buffer avoids the general serializer's per-field
//! machinery; the unit test checks it against serde_json's reading of the result.

use base64::Engine;

use super::{Event, Stream};

/// Append `event` as one NDJSON line.
pub fn event(out: &mut Vec<u8>, seq: u64, ts: &str, event: &Event<'_>) {
    out.extend_from_slice(b"{\"seq\":");
    number(out, seq);
    out.extend_from_slice(b",\"ts\":");
    string(out, ts);
    match event {
        Event::StepStart {
            step,
            name,
            node,
            errorhandler,
        } => {
            out.extend_from_slice(b",\"kind\":\"step_start\",\"step\":");
            number(out, *step as u64);
            if let Some(name) = name {
                out.extend_from_slice(b",\"name\":");
                string(out, name);
            }
            out.extend_from_slice(b",\"node\":");
            string(out, node);
            if *errorhandler {
                out.extend_from_slice(b",\"errorhandler\":true");
            }
        }
        Event::Output {
            step,
            node,
            stream,
            bytes,
        } => {
            out.extend_from_slice(b",\"kind\":\"output\",\"step\":");
            number(out, *step as u64);
            out.extend_from_slice(b",\"node\":");
            string(out, node);
            out.extend_from_slice(match stream {
                Stream::Stdout => b",\"stream\":\"stdout\"",
                Stream::Stderr => b",\"stream\":\"stderr\"",
            });
            match std::str::from_utf8(bytes) {
                Ok(text) => {
                    out.extend_from_slice(b",\"text\":");
                    string(out, text);
                }
                Err(_) => {
                    out.extend_from_slice(b",\"b64\":\"");
                    let start = out.len();
                    let engine = base64::engine::general_purpose::STANDARD;
                    out.resize(
                        start + base64::encoded_len(bytes.len(), true).unwrap_or(0),
                        0,
                    );
                    let n = engine
                        .encode_slice(bytes, &mut out[start..])
                        .expect("the buffer has the encoded length");
                    out.truncate(start + n);
                    out.push(b'"');
                }
            }
        }
        Event::StepEnd {
            step,
            node,
            status,
            exit_code,
            signal,
            duration_ms,
        } => {
            out.extend_from_slice(b",\"kind\":\"step_end\",\"step\":");
            number(out, *step as u64);
            out.extend_from_slice(b",\"node\":");
            string(out, node);
            out.extend_from_slice(b",\"status\":");
            string(out, status.as_str());
            if let Some(code) = exit_code {
                out.extend_from_slice(b",\"exit_code\":");
                signed(out, *code);
            }
            if let Some(signal) = signal {
                out.extend_from_slice(b",\"signal\":");
                signed(out, *signal);
            }
            out.extend_from_slice(b",\"duration_ms\":");
            number(out, *duration_ms);
        }
        Event::System { level, text } => {
            out.extend_from_slice(b",\"kind\":\"system\",\"level\":");
            string(out, level.as_str());
            out.extend_from_slice(b",\"text\":");
            string(out, text);
        }
    }
    out.extend_from_slice(b"}\n");
}

fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn signed(out: &mut Vec<u8>, n: i32) {
    if n < 0 {
        out.push(b'-');
    }
    number(out, u64::from(n.unsigned_abs()));
}

/// Whether any of the eight bytes in `word` needs escaping: below 0x20, `"` or `\`
/// (the classic SWAR tests for "has a byte less than n" and "has a byte equal to n").
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = (word ^ (ONES * b'"' as u64)).wrapping_sub(ONES) & !(word ^ (ONES * b'"' as u64));
    let backslash =
        (word ^ (ONES * b'\\' as u64)).wrapping_sub(ONES) & !(word ^ (ONES * b'\\' as u64));
    (below_space | quote | backslash) & HIGHS != 0
}

/// A JSON string: `"`, `\` and control characters escaped, everything else as is.
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip eight plain bytes at a time: most text needs no escape until its newline.
        if let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            if !needs_escape(word) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[run..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        i += 1;
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Level;
    use crate::testing::Rng;
    use sortie_protocol::StepStatus;

    fn line(e: &Event<'_>) -> serde_json::Value {
        let mut out = Vec::new();
        event(&mut out, 7, "2026-11-27T21:00:00.000Z", e);
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn every_kind_encodes_to_the_json_it_means() {
        let text = "tab\there \"quoted\" back\\slash \u{1}\u{1f} é ✓ \r\n";
        let v = line(&Event::Output {
            step: 3,
            node: "local",
            stream: Stream::Stderr,
            bytes: text.as_bytes(),
        });
        assert_eq!(v["seq"], 7);
        assert_eq!(v["kind"], "output");
        assert_eq!(v["stream"], "stderr");
        assert_eq!(v["text"], text);
        let v = line(&Event::Output {
            step: 0,
            node: "n",
            stream: Stream::Stdout,
            bytes: b"\xff\xfe\n",
        });
        assert_eq!(v["b64"], "//4K");
        assert!(v.get("text").is_none());
        let v = line(&Event::StepStart {
            step: 1,
            name: Some("a \"b\""),
            node: "local",
            errorhandler: true,
        });
        assert_eq!(v["name"], "a \"b\"");
        assert_eq!(v["errorhandler"], true);
        let v = line(&Event::StepStart {
            step: 1,
            name: None,
            node: "local",
            errorhandler: false,
        });
        assert!(v.get("name").is_none() && v.get("errorhandler").is_none());
        let v = line(&Event::StepEnd {
            step: 2,
            node: "local",
            status: StepStatus::TimedOut,
            exit_code: Some(-3),
            signal: Some(9),
            duration_ms: 12,
        });
        assert_eq!(v["status"], "timed_out");
        assert_eq!(v["exit_code"], -3);
        assert_eq!(v["signal"], 9);
        assert_eq!(v["duration_ms"], 12);
        let v = line(&Event::System {
            level: Level::Warn,
            text: "x\u{0}y",
        });
        assert_eq!(v["level"], "warn");
        assert_eq!(v["text"], "x\u{0}y");
        for probe in [
            "",
            "a",
            "abcdefgh",
            "abcdefg\"",
            "\\bcdefghij",
            "0123456789abcde\u{7f}\u{80}é",
            "\u{1f}",
        ] {
            assert_eq!(
                line(&Event::System {
                    level: Level::Info,
                    text: probe
                })["text"],
                probe
            );
        }
        for b in 0u8..=0x7f {
            let word = u64::from_le_bytes([b'a', b'a', b'a', b, b'a', b'a', b'a', b'a']);
            assert_eq!(
                needs_escape(word),
                b < 0x20 || b == b'"' || b == b'\\',
                "byte {b:#x}"
            );
        }
        let mut big = Vec::new();
        number(&mut big, u64::MAX);
        assert_eq!(big, u64::MAX.to_string().as_bytes());
    }

    /// Bytes biased towards what breaks encoders: quotes, backslashes, control
    /// characters, multi-byte UTF-8, and invalid sequences.
    fn spicy(rng: &mut Rng) -> Vec<u8> {
        const SPICE: &[&[u8]] = &[
            b"\"",
            b"\\",
            b"\n",
            b"\r",
            b"\t",
            b"\x00",
            b"\x1b[31m",
            b"\x7f",
            "é".as_bytes(),
            "💥".as_bytes(),
            b"\xff",
            b"\xc3",
            b"\xe2\x82",
            b"plain text ",
        ];
        let mut out = Vec::new();
        for _ in 0..rng.below(24) {
            match rng.below(3) {
                0 => out.push(rng.below(256) as u8),
                _ => out.extend_from_slice(SPICE[rng.below(SPICE.len())]),
            }
        }
        out
    }

    fn text(rng: &mut Rng) -> String {
        String::from_utf8_lossy(&spicy(rng)).into_owned()
    }

    /// The hand-written encoder against the format's type: for arbitrary events,
    /// each line parses back as a `LogEvent` with the same fields.
    #[test]
    fn encoded_events_parse_back_to_the_same_events() {
        use base64::Engine;
        use sortie_protocol::log::{EventKind, LogEvent, OutputStream, SystemLevel};
        let statuses = [
            StepStatus::Succeeded,
            StepStatus::Failed,
            StepStatus::TimedOut,
            StepStatus::Cancelled,
            StepStatus::Interrupted,
        ];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for case in 0..20_000u64 {
            let (step, node) = (rng.below(10_000), text(&mut rng));
            let line = text(&mut rng);
            let bytes = spicy(&mut rng);
            let name = (rng.below(2) == 0).then(|| text(&mut rng));
            let exit_code = (rng.below(2) == 0).then(|| rng.next() as i32);
            let signal = (rng.below(2) == 0).then(|| rng.below(64) as i32);
            let status = statuses[rng.below(5)];
            let duration_ms = rng.next();
            let (built, expected) = match rng.below(4) {
                0 => (
                    Event::StepStart {
                        step,
                        name: name.as_deref(),
                        node: &node,
                        errorhandler: case % 2 == 0,
                    },
                    EventKind::StepStart {
                        step,
                        name: name.clone(),
                        node: node.clone(),
                        errorhandler: case % 2 == 0,
                    },
                ),
                1 => {
                    let (text, b64) = match std::str::from_utf8(&bytes) {
                        Ok(t) => (Some(t.to_string()), None),
                        Err(_) => (
                            None,
                            Some(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                        ),
                    };
                    let stream = if case % 3 == 0 {
                        Stream::Stderr
                    } else {
                        Stream::Stdout
                    };
                    (
                        Event::Output {
                            step,
                            node: &node,
                            stream,
                            bytes: &bytes,
                        },
                        EventKind::Output {
                            step,
                            node: node.clone(),
                            stream: match stream {
                                Stream::Stdout => OutputStream::Stdout,
                                Stream::Stderr => OutputStream::Stderr,
                            },
                            text,
                            b64,
                        },
                    )
                }
                2 => (
                    Event::StepEnd {
                        step,
                        node: &node,
                        status,
                        exit_code,
                        signal,
                        duration_ms,
                    },
                    EventKind::StepEnd {
                        step,
                        node: node.clone(),
                        status,
                        exit_code,
                        signal,
                        duration_ms,
                    },
                ),
                _ => (
                    Event::System {
                        level: Level::Warn,
                        text: &line,
                    },
                    EventKind::System {
                        level: SystemLevel::Warn,
                        text: line.clone(),
                    },
                ),
            };
            let mut out = Vec::new();
            event(&mut out, case, "2026-11-28T00:00:00.000Z", &built);
            assert_eq!(
                out.iter().filter(|b| **b == b'\n').count(),
                1,
                "one line: {out:?}"
            );
            let parsed: LogEvent = serde_json::from_slice(&out)
                .unwrap_or_else(|e| panic!("case {case}: {e}: {}", String::from_utf8_lossy(&out)));
            assert_eq!(
                parsed,
                LogEvent {
                    seq: case,
                    ts: "2026-11-28T00:00:00.000Z".into(),
                    kind: expected
                },
                "case {case}"
            );
        }
    }
}
