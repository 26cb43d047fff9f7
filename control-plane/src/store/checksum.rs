//! A log's SHA-256, kept up to date as its bytes are stored.
//!
//! A completion says how long the log is and what its SHA-256 is, and the
//! control plane checks that against what it holds. Reading the whole log
//! back to hash it would hold the database for as long as a long log takes to
//! read (seconds for gigabytes, which a compressed upload makes cheap to
//! send), and a runner could ask for that again and again. So each job keeps
//! the hasher's state, as hex, and every append feeds it the new bytes: a
//! completion is checked without reading the log. A running job's log
//! stored before states were kept is read back once, when a store opens on
//! it (or at its next append, for a store open already), and its state is
//! kept from then on.

use sha2::digest::common::hazmat::{SerializableState, SerializedState};
use sha2::{Digest, Sha256};
use sortie_protocol::LogSummary;

/// The hasher whose state is `state`; none for a damaged state, which is
/// not trusted.
pub fn load(state: &str) -> Option<Sha256> {
    let bytes: Vec<u8> = (0..state.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(state.get(i..i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    let serialized = SerializedState::<Sha256>::try_from(bytes.as_slice()).ok()?;
    Sha256::deserialize(&serialized).ok()
}

/// The state of `hasher`, to be kept with its job.
pub fn save(hasher: &Sha256) -> String {
    super::hex(hasher.serialize().as_slice())
}

/// The summary of a log of `length` bytes whose state is `state`.
pub fn summary(state: &str, length: u64) -> Option<LogSummary> {
    Some(LogSummary {
        length,
        sha256: super::hex(&load(state)?.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_carried_across_appends_hashes_the_whole_log() {
        let log = b"{\"seq\":0}\n".repeat(1000);
        let mut state = save(&Sha256::new());
        for piece in log.chunks(77) {
            let mut hasher = load(&state).unwrap();
            hasher.update(piece);
            state = save(&hasher);
        }
        let whole = summary(&state, log.len() as u64).unwrap();
        assert_eq!(whole.sha256, super::super::hex(&Sha256::digest(&log)));
        assert_eq!(whole.length, log.len() as u64);
        // A damaged state is not trusted.
        assert!(load("zz").is_none());
        assert!(load(&state[..state.len() - 2]).is_none());
        assert_eq!(summary("0123", 1), None);
    }
}
