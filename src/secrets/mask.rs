//! The masker: every secret value, and its common encodings, out of every byte
//! that leaves sortie.
//!
//! Secret values are registered before any step runs. For each value the masker
//! also looks for each of its lines (a PEM key printed line by line), its base64
//! forms (standard and URL-safe, at the three byte alignments a value can have
//! inside a longer encoded string, with and without padding), its URL-encoded,
//! JSON-escaped and shell-single-quoted forms. All patterns go into one
//! Aho-Corasick automaton (leftmost-longest), so the cost hardly depends on how
//! many secrets there are.
//!
//! Output is masked as a stream, before it is cut into lines and events: a value
//! split across two reads, two events or two upload chunks is still whole here. A
//! stream holds back only the shortest tail that could still become a secret (a
//! suffix that is a prefix of some pattern: one the automaton, walked anchored,
//! does not reject), so ordinary output is never delayed. Replacements are the fixed
//! marker `[SECRET]`, inserted before JSON encoding, so framing stays valid.
//!
//! Most output holds no secret, and walking the automaton costs a couple of
//! nanoseconds a byte whatever it finds. So a search first looks up each
//! position's next four bytes in a bit set of every pattern's first four
//! ([`Starts`]), a few instructions a byte, and asks the automaton only where
//! a pattern may start: the same leftmost-longest matches, found about three
//! times faster. It need not even look at each position: every pattern is at
//! least `shortest` bytes long, so a pattern starting anywhere in the next
//! `reach` positions holds, `reach - 1` bytes ahead, one of the four-byte
//! pieces its first `reach + 3` bytes have. Where the bytes there are none of
//! those (a second bit set), all `reach` positions are passed over at once.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock, RwLock};

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, Input, Match, MatchKind};
use anyhow::{bail, Result};
use base64::Engine;

use crate::secret::Secret;

/// What a masked value is replaced with.
pub const MARKER: &[u8] = b"[SECRET]";
/// Default shortest value accepted as a secret.
pub const DEFAULT_MIN_LENGTH: usize = 4;
/// Encoded forms shorter than this are not masked (they would match ordinary text).
const MIN_ENCODED: usize = 8;

/// Bits in each set of four-byte pieces (32 KiB): with a thousand secrets'
/// forms in the set of starts, few positions of ordinary output hit one by
/// chance.
const START_BITS: u32 = 18;
/// The most positions passed over at once. The pieces a skip looks for number
/// `reach` per pattern, and are kept to at most a sixteenth of the bits, so
/// that ordinary output seldom hits one: many patterns mean a short reach (a
/// thousand secrets' forms: none).
const MOST_REACH: usize = 16;

/// A set of four-byte pieces, hashed into bits.
struct Pieces {
    bits: Box<[u64]>,
}

impl Pieces {
    fn new() -> Pieces {
        Pieces {
            bits: vec![0u64; 1 << (START_BITS - 6)].into_boxed_slice(),
        }
    }

    fn slot(window: &[u8]) -> usize {
        let word = u32::from_le_bytes(window[..4].try_into().expect("four bytes"));
        (word.wrapping_mul(0x9e37_79b1) >> (32 - START_BITS)) as usize
    }

    fn insert(&mut self, window: &[u8]) {
        let slot = Pieces::slot(window);
        self.bits[slot >> 6] |= 1 << (slot & 63);
    }

    fn holds(&self, window: &[u8]) -> bool {
        let slot = Pieces::slot(window);
        self.bits[slot >> 6] & (1 << (slot & 63)) != 0
    }
}

/// Where a pattern may start: the first four bytes of every pattern and, when
/// the patterns are few and long enough to skip by, the pieces each has in its
/// first `reach + 3` bytes.
struct Starts {
    first: Pieces,
    /// Positions passed over at once (at least 2), and the pieces looked
    /// for; `None`: no skipping.
    ahead: Option<(usize, Pieces)>,
    /// The shortest pattern's length: no pattern starts later than this before the end.
    shortest: usize,
}

impl Starts {
    /// The sets, unless a pattern is shorter than four bytes.
    fn new(patterns: &[Vec<u8>]) -> Option<Starts> {
        let shortest = patterns.iter().map(Vec::len).min()?;
        if shortest < 4 {
            return None;
        }
        let mut first = Pieces::new();
        for pattern in patterns {
            first.insert(pattern);
        }
        let room = (1usize << START_BITS) / 16 / patterns.len();
        let reach = room.min(shortest - 3).min(MOST_REACH);
        let ahead = (reach >= 2).then(|| {
            let mut ahead = Pieces::new();
            for pattern in patterns {
                for offset in 0..reach {
                    ahead.insert(&pattern[offset..]);
                }
            }
            (reach, ahead)
        });
        Some(Starts {
            first,
            ahead,
            shortest,
        })
    }

    /// What `matches` says of the first position at `from` or later where a
    /// pattern may start and it finds one.
    fn find<T>(
        &self,
        hay: &[u8],
        from: usize,
        mut matches: impl FnMut(usize) -> Option<T>,
    ) -> Option<T> {
        // A whole pattern fits from no later position.
        let last = hay.len().checked_sub(self.shortest)?;
        let mut p = from;
        match &self.ahead {
            Some((reach, ahead)) => {
                while p <= last {
                    // Any pattern starting in p..p + reach covers the piece at `q`.
                    let q = p + reach - 1;
                    if !ahead.holds(&hay[q..]) {
                        p = q + 1;
                        continue;
                    }
                    if self.first.holds(&hay[p..]) {
                        if let Some(found) = matches(p) {
                            return Some(found);
                        }
                    }
                    p += 1;
                }
                None
            }
            None => (p..=last)
                .filter(|&p| self.first.holds(&hay[p..]))
                .find_map(matches),
        }
    }
}

#[derive(Default)]
pub struct Masker {
    automaton: Option<NFA>,
    starts: Option<Starts>,
    /// Longest pattern, in bytes.
    longest: usize,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let patterns = self.automaton.as_ref().map_or(0, |a| a.patterns_len());
        write!(f, "Masker({patterns} patterns)")
    }
}

/// Every form of `value` the masker looks for.
pub fn patterns(value: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![value.to_vec()];
    if value.contains(&b'\n') {
        for line in value.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() >= DEFAULT_MIN_LENGTH {
                out.push(line.to_vec());
            }
        }
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    out.push(STANDARD.encode(value).into_bytes());
    out.push(URL_SAFE.encode(value).into_bytes());
    for align in 0..3usize {
        let mut shifted = vec![0u8; align];
        shifted.extend_from_slice(value);
        // Only the characters whose six bits all come from the value are stable,
        // whatever bytes surround it.
        let first = (8 * align).div_ceil(6);
        let last = 8 * (align + value.len()) / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&shifted);
            if last > first && last - first >= MIN_ENCODED {
                out.push(encoded.as_bytes()[first..last].to_vec());
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(value) {
        let json = serde_json::to_string(text).expect("a string serializes");
        out.push(json.as_bytes()[1..json.len() - 1].to_vec());
        out.push(text.replace('\'', "'\\''").into_bytes());
    }
    let url = percent_encoding::percent_encode(value, crate::net::NOT_UNRESERVED);
    out.push(url.to_string().into_bytes());
    out.retain(|p| p.len() >= DEFAULT_MIN_LENGTH.min(value.len()) && !p.is_empty());
    out.sort();
    out.dedup();
    out
}

/// Refuse a secret value shorter than `min_length`: masking it would mask
/// half the log.
pub fn check_length(name: &str, value: &Secret, min_length: usize) -> Result<()> {
    if value.expose().len() < min_length {
        bail!(
            "secret {name} is shorter than {min_length} characters: refusing a value that \
             short as a secret (masking it would hide ordinary output)"
        );
    }
    Ok(())
}

impl Masker {
    /// A masker for these values; a value shorter than `min_length` is refused, since
    /// masking it would mask half the log.
    pub fn new<'a>(
        values: impl IntoIterator<Item = (&'a str, &'a Secret)>,
        min_length: usize,
    ) -> Result<Masker> {
        let mut all: Vec<Vec<u8>> = Vec::new();
        for (name, value) in values {
            check_length(name, value, min_length)?;
            all.extend(patterns(value.expose().as_bytes()));
        }
        all.sort();
        all.dedup();
        if all.is_empty() {
            return Ok(Masker::default());
        }
        let automaton = NFA::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&all)?;
        Ok(Masker {
            automaton: Some(automaton),
            starts: Starts::new(&all),
            longest: all.iter().map(Vec::len).max().unwrap_or(0),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.automaton.is_none()
    }

    /// The leftmost-longest match in `hay` that starts at `from` or later.
    fn find(&self, nfa: &NFA, hay: &[u8], from: usize) -> Option<Match> {
        let search = |input: Input<'_>| nfa.try_find(&input).expect("the search is supported");
        let Some(starts) = &self.starts else {
            return search(Input::new(hay).range(from..));
        };
        // The first position where a pattern starts, and the longest there,
        // is what the unanchored leftmost-longest search would find.
        starts.find(hay, from, |p| {
            search(Input::new(hay).range(p..).anchored(Anchored::Yes))
        })
    }

    /// `bytes` with every pattern replaced by the marker.
    pub fn mask_bytes<'b>(&self, bytes: &'b [u8]) -> Cow<'b, [u8]> {
        let Some(ac) = &self.automaton else {
            return Cow::Borrowed(bytes);
        };
        let Some(mut found) = self.find(ac, bytes, 0) else {
            return Cow::Borrowed(bytes);
        };
        let mut out = Vec::with_capacity(bytes.len());
        let mut pos = 0;
        loop {
            out.extend_from_slice(&bytes[pos..found.start()]);
            out.extend_from_slice(MARKER);
            pos = found.end();
            match self.find(ac, bytes, pos) {
                Some(next) => found = next,
                None => break,
            }
        }
        out.extend_from_slice(&bytes[pos..]);
        Cow::Owned(out)
    }

    /// `text` with every pattern replaced by the marker.
    pub fn mask_str<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self.mask_bytes(text.as_bytes()) {
            Cow::Borrowed(_) => Cow::Borrowed(text),
            // A pattern may end inside a character only if the value does; lossy is safe.
            Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    /// The length of the longest tail of `bytes` that could still grow into a
    /// pattern: the longest suffix the automaton, walked anchored from its
    /// start, does not reject. Most tails are rejected at their first byte.
    fn holdback(&self, nfa: &NFA, bytes: &[u8]) -> usize {
        let limit = self.longest.saturating_sub(1).min(bytes.len());
        let start = nfa
            .start_state(Anchored::Yes)
            .expect("built with anchored starts");
        let grows = |tail: &[u8]| {
            tail.iter()
                .try_fold(start, |state, &b| {
                    let next = nfa.next_state(Anchored::Yes, state, b);
                    (!nfa.is_dead(next)).then_some(next)
                })
                .is_some()
        };
        (1..=limit)
            .rev()
            .find(|&k| grows(&bytes[bytes.len() - k..]))
            .unwrap_or(0)
    }
}

/// Maskers whose secrets must also stay out of sortie's own diagnostics.
static DIAGNOSTICS: RwLock<Vec<Arc<Masker>>> = RwLock::new(Vec::new());
/// Where the masker of the runner's own credentials comes from, asked at
/// each diagnostic: it is built when first needed, not at each credential
/// found (a shot with nothing to say builds none).
static RUNNER: OnceLock<fn() -> Arc<Masker>> = OnceLock::new();

/// Mask the runner's own credentials, as `masker` gives them at the time, in
/// its diagnostics. It must not write a diagnostic itself.
pub fn set_runner_diagnostics(masker: fn() -> Arc<Masker>) {
    let _ = RUNNER.set(masker);
}

/// Mask these secrets in sortie's own diagnostics (stderr) too, for the rest of the run.
pub fn register_for_diagnostics(masker: Arc<Masker>) {
    if !masker.is_empty() {
        DIAGNOSTICS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(masker);
    }
}

/// `diagnostic` with the runner's credentials and every registered secret masked.
pub fn mask_diagnostic(diagnostic: &[u8]) -> Cow<'_, [u8]> {
    let maskers = DIAGNOSTICS.read().unwrap_or_else(|e| e.into_inner());
    let runner = RUNNER.get().map(|masker| masker());
    let mut bytes = Cow::Borrowed(diagnostic);
    for masker in runner.iter().chain(maskers.iter()) {
        if let Cow::Owned(masked) = masker.mask_bytes(&bytes) {
            bytes = Cow::Owned(masked);
        }
    }
    bytes
}

/// sortie's stderr, masked: the writer its diagnostics go through. Each formatted
/// diagnostic arrives in one write, so a value cannot straddle two writes.
pub struct MaskedStderr;

impl std::io::Write for MaskedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bytes = mask_diagnostic(buf);
        // A diagnostic that cannot be written (a full disk, a closed pipe) is
        // dropped: it must not stop the shot, nor the jobs it runs.
        let _ = std::io::stderr().write_all(&bytes);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Masks one stream of output, holding back a possible secret's beginning until
/// the rest arrives.
pub struct MaskStream {
    masker: Arc<Masker>,
    buf: Vec<u8>,
}

impl MaskStream {
    pub fn new(masker: Arc<Masker>) -> MaskStream {
        MaskStream {
            masker,
            buf: Vec::new(),
        }
    }

    /// Feed bytes; `out` gets masked bytes that can no longer be part of a secret.
    pub fn push(&mut self, input: &[u8], out: &mut dyn FnMut(&[u8])) {
        let Some(ac) = &self.masker.automaton else {
            return out(input);
        };
        let owned;
        let bytes: &[u8] = if self.buf.is_empty() {
            input
        } else {
            self.buf.extend_from_slice(input);
            owned = std::mem::take(&mut self.buf);
            &owned
        };
        let mut release = bytes.len() - self.masker.holdback(ac, bytes);
        let mut pos = 0;
        while let Some(m) = self.masker.find(ac, bytes, pos) {
            if m.start() >= release {
                break;
            }
            if m.end() > release {
                // The match reaches into the tail: a longer pattern may yet win there.
                release = m.start();
                break;
            }
            if m.start() > pos {
                out(&bytes[pos..m.start()]);
            }
            out(MARKER);
            pos = m.end();
        }
        if release > pos {
            out(&bytes[pos..release]);
        }
        self.buf.clear();
        self.buf.extend_from_slice(&bytes[release..]);
    }

    /// End of stream: mask and release what was held back.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8])) {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            out(&self.masker.mask_bytes(&rest));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(values: &[&str]) -> Arc<Masker> {
        let secrets: Vec<(String, Secret)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("S{i}"), Secret::new(v.to_string())))
            .collect();
        Arc::new(Masker::new(secrets.iter().map(|(n, s)| (n.as_str(), s)), 4).unwrap())
    }

    fn stream(m: &Arc<Masker>, chunks: &[&[u8]]) -> Vec<u8> {
        let mut s = MaskStream::new(m.clone());
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, &mut |b| out.extend_from_slice(b));
        }
        s.finish(&mut |b| out.extend_from_slice(b));
        out
    }

    use crate::testing::Rng;

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn short_values_are_refused() {
        let s = Secret::new("abc".into());
        let err = Masker::new([("TINY", &s)], 4).unwrap_err().to_string();
        assert!(err.contains("TINY") && !err.contains("abc"), "{err}");
    }

    #[test]
    fn plain_and_encoded_forms_are_masked() {
        let secret = "s3cr3t-p@ss/word'x";
        let m = masker(&[secret]);
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let cases = [
            secret.to_string(),
            STANDARD.encode(secret),
            STANDARD.encode(format!("{secret}\n")),
            URL_SAFE_NO_PAD.encode(format!("x{secret}")),
            STANDARD.encode(format!("ab{secret}yz")),
            serde_json::to_string(secret).unwrap(),
            "s3cr3t-p%40ss%2Fword%27x".to_string(),
            "'s3cr3t-p@ss/word'\\''x'".to_string(),
        ];
        for case in cases {
            let masked = m.mask_str(&case);
            assert!(masked.contains("[SECRET]"), "{case} -> {masked}");
            assert!(!masked.contains("s3cr3t"), "{case} -> {masked}");
        }
        assert_eq!(m.mask_str("nothing here"), "nothing here");
    }

    #[test]
    fn each_line_of_a_multi_line_value_is_masked() {
        let key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAo\n-----END KEY-----";
        let m = masker(&[key]);
        let out = m.mask_str("line: AQEFAASCBKcwggSjAgEAAo\r\n");
        assert_eq!(out, "line: [SECRET]\r\n");
    }

    #[test]
    fn ordinary_output_is_not_held_back() {
        let m = masker(&["hunter2hunter2"]);
        let mut s = MaskStream::new(m);
        let mut out = Vec::new();
        s.push(b"Password: ", &mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"Password: ");
        s.push(b"xx hunt", &mut |b| out.extend_from_slice(b));
        assert_eq!(
            out, b"Password: xx ",
            "only a possible secret's start waits"
        );
        s.push(b"er2hunter2!", &mut |b| out.extend_from_slice(b));
        assert_eq!(out, b"Password: xx [SECRET]!");
    }

    /// The start filter only skips work: its matches are the automaton's own,
    /// searched unanchored over the whole text.
    #[test]
    fn the_start_filter_finds_what_the_automaton_alone_finds() {
        let mut rng = Rng(0x0dd_5eed_f00d);
        let alphabet = b"abcdXYZ019+/=-_ \n\"'%";
        for case in 0..3_000 {
            // Values sharing their beginnings, so that matches overlap and
            // the longest one must win.
            let secrets: Vec<String> = (0..1 + rng.below(4))
                .map(|_| {
                    let len = 4 + rng.below(12);
                    format!(
                        "abcd{}",
                        String::from_utf8(rng.bytes(len, &alphabet[..12])).unwrap()
                    )
                })
                .collect();
            let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let m = masker(&refs);
            assert!(m.starts.is_some());
            let mut text = Vec::new();
            for _ in 0..1 + rng.below(6) {
                let len = rng.below(12);
                text.extend(rng.bytes(len, alphabet));
                let s = secrets[rng.below(secrets.len())].as_bytes();
                let forms = patterns(s);
                let form = &forms[rng.below(forms.len())];
                text.extend(&form[..form.len() - rng.below(2)]);
            }
            assert_finds_what_the_automaton_finds(&m, &secrets, &text, case);
        }
        // Values shorter than the filter's four bytes go to the automaton alone.
        let short = Secret::new("ab".into());
        let m = Masker::new([("S", &short)], 2).unwrap();
        assert!(m.starts.is_none());
        assert_eq!(m.mask_str("xaby ab"), "x[SECRET]y [SECRET]");
    }

    /// `m`'s matches in `text` are those of an unfiltered leftmost-longest
    /// search for every form of `secrets`.
    fn assert_finds_what_the_automaton_finds(
        m: &Masker,
        secrets: &[String],
        text: &[u8],
        case: usize,
    ) {
        let all: Vec<Vec<u8>> = secrets
            .iter()
            .flat_map(|s| patterns(s.as_bytes()))
            .collect();
        let reference = aho_corasick::AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&all)
            .unwrap();
        let want: Vec<_> = reference.find_iter(text).map(|f| f.span()).collect();
        let ac = m.automaton.as_ref().unwrap();
        let mut got = Vec::new();
        let mut pos = 0;
        while let Some(f) = m.find(ac, text, pos) {
            got.push(f.span());
            pos = f.end();
        }
        assert_eq!(
            got,
            want,
            "case {case}: {:?}",
            String::from_utf8_lossy(text)
        );
    }

    /// Long secrets are searched for by skipping: whatever their number and
    /// where they stand, nothing is skipped over.
    #[test]
    fn skipping_ahead_misses_no_secret() {
        let mut rng = Rng(0x5c1b_a4ea_d000);
        let alphabet = b"abcdefghijXYZ0123456789+/=-_ \n\"'%";
        let mut skipped = [0usize; 2];
        for case in 0..1_000 {
            // From one secret (a long reach) to hundreds (a short one), or
            // one too short to skip by.
            let count = [1, 3, 40, 200][rng.below(4)];
            let shortest = if case % 10 == 0 { 4 } else { 8 };
            let secrets: Vec<String> = (0..count)
                .map(|_| {
                    let len = shortest + rng.below(40);
                    String::from_utf8(rng.bytes(len, &alphabet[..20])).unwrap()
                })
                .collect();
            let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let m = masker(&refs);
            let starts = m.starts.as_ref().unwrap();
            skipped[usize::from(starts.ahead.is_some())] += 1;
            let mut text = Vec::new();
            for _ in 0..1 + rng.below(5) {
                let len = rng.below(200);
                text.extend(rng.bytes(len, alphabet));
                let s = secrets[rng.below(secrets.len())].as_bytes();
                let forms = patterns(s);
                let form = &forms[rng.below(forms.len())];
                // Whole, or cut short by a byte at either end.
                let cut = rng.below(3);
                text.extend(&form[usize::from(cut == 1)..form.len() - usize::from(cut == 2)]);
            }
            assert_finds_what_the_automaton_finds(&m, &secrets, &text, case);
        }
        assert!(
            skipped.iter().all(|&n| n >= 30),
            "both searches were tried: {skipped:?}"
        );
    }

    /// The property: whatever the split points and surrounding bytes, no secret and
    /// no encoded form of it survives the stream.
    #[test]
    fn randomized_splits_never_leak() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789+/=-_ \n\"'%\\";
        for case in 0..10_000 {
            let n = 1 + rng.below(3);
            let secrets: Vec<String> = (0..n)
                .map(|_| {
                    let len = 6 + rng.below(40);
                    String::from_utf8(rng.bytes(len, &alphabet[..46])).unwrap()
                })
                .collect();
            let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let m = masker(&refs);
            let mut forms: Vec<Vec<u8>> = Vec::new();
            let mut text = Vec::new();
            for s in &secrets {
                let len = rng.below(20);
                text.extend(rng.bytes(len, alphabet));
                let form = match rng.below(4) {
                    0 => s.clone().into_bytes(),
                    1 => base64::engine::general_purpose::STANDARD
                        .encode(format!("{}{s}\n", "z".repeat(rng.below(3))))
                        .into_bytes(),
                    2 => serde_json::to_string(s).unwrap().into_bytes(),
                    _ => s.clone().into_bytes(),
                };
                forms.extend(patterns(s.as_bytes()));
                text.extend(&form);
            }
            let len = rng.below(20);
            text.extend(rng.bytes(len, alphabet));
            let mut chunks = Vec::new();
            let mut rest = &text[..];
            while !rest.is_empty() {
                let k = 1 + rng.below(rest.len().min(16));
                chunks.push(&rest[..k]);
                rest = &rest[k..];
            }
            let out = stream(&m, &chunks);
            for form in &forms {
                assert!(
                    !contains(&out, form),
                    "case {case}: {:?} leaked in {:?}",
                    String::from_utf8_lossy(form),
                    String::from_utf8_lossy(&out)
                );
            }
            assert_eq!(
                out,
                m.mask_bytes(&text).into_owned(),
                "case {case}: stream and whole differ"
            );
        }
    }
}
