//! Helpers the unit tests of several parts share.

/// A small deterministic generator (xorshift), so a randomized test's failure
/// reproduces without a crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `n` bytes drawn from `alphabet`.
    pub fn bytes(&mut self, n: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
}

/// Run `body` as the test `name` (its full path) alone, in a process of its
/// own: the test binary run again for that one test. A test that runs a
/// step through `exec` needs it: a step's end kills every child of the
/// process that sortie did not start on purpose (the leftovers of a
/// subreaper), which in a shared test process are other tests' children.
pub fn alone(name: &str, body: impl FnOnce()) {
    const ALONE: &str = "SORTIE_TEST_ALONE";
    if std::env::var(ALONE).is_ok_and(|v| v == name) {
        body();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(ALONE, name)
        .output()
        .expect("the test binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{name}, alone:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
