//! Random identifiers: request ids, claim ids, jitter.
//!
//! One place reads the OS random source, through the getrandom crate's
//! getrandom(2) backend (`.cargo/config.toml` selects it: it needs no /dev, and
//! sortie runs in empty roots), so every id and every jitter is unpredictable.

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the kernel's random source works");
    bytes
}

/// A random (version 4) UUID in its usual text form.
pub fn uuid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A short random name part (64 bits, hex), for temporary file names.
pub fn short() -> String {
    hex::encode(random_bytes::<8>())
}

/// A uniformly random number in [0, 1).
pub fn unit_random() -> f64 {
    let n = u64::from_le_bytes(random_bytes::<8>()) >> 11;
    n as f64 / (1u64 << 53) as f64
}

/// A small, stable hash (FNV-1a) for file names made from names that may hold
/// anything; not for security.
pub fn short_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = super::uuid();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_ne!(a, super::uuid());
        let r = super::unit_random();
        assert!((0.0..1.0).contains(&r));
    }
}
