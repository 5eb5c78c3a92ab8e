//! The set of screen lines seen lately, by 64-bit hash, in two generations (see
//! [`GENERATION`]).
//!
//! Almost every line of scrolling output is new, so every line costs a lookup, and the
//! emulator's state and the new lines' text push the set out of the caches between two
//! lookups: a lookup is a memory access, not a computation. So the set is one flat
//! open-addressing table (a lookup touches one cache line, where two hash sets touched
//! four), sized to the session (8 KiB at first, 2 MiB at most), and [`Seen::touch`] lets a caller with several lines at hand start all their
//! memory accesses before the first lookup needs its answer.

/// Lines are remembered in two generations of this many: a line is dropped as a duplicate
/// if it is among the last 64–128 Ki distinct lines. Redraws repeat lines within moments, so
/// this catches them and bounds memory; a line that comes back after that many others is
/// indexed again (a duplicate hit, no loss).
pub(crate) const GENERATION: usize = 1 << 16;

/// Table slots at most: at most two generations live in it, so it is at most half full
/// (linear probing stays short). 2 MiB.
const SLOTS: usize = 4 * GENERATION;
/// Table slots at first (most sessions are small); the table doubles whenever it would be
/// more than half full.
const FIRST_SLOTS: usize = 1 << 10;

/// Hashes of the lines seen lately. A slot holds a line's hash with its lowest bit
/// replaced by the parity of the generation that inserted it (0: empty slot), so the
/// previous generation is dropped by one pass over the table; hashes compare on their
/// upper 63 bits.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Allocated at the first line (many sessions have none); a power of two.
    slots: Vec<u64>,
    /// Parity of the current generation.
    parity: u64,
    /// Lines inserted in the current generation.
    current: usize,
    /// Lines kept from the previous generation.
    previous: usize,
    /// Scratch for the entries that survive a generation change.
    keep: Vec<u64>,
}

impl Seen {
    /// Reads the slot where `hash` would be found, so that the memory access is under way
    /// when [`Seen::insert`] asks. Returns the slot's value (callers fold them into
    /// something kept, so that the read is not optimised away).
    pub(crate) fn touch(&self, hash: u64) -> u64 {
        self.slots.get(self.index(hash)).copied().unwrap_or(0)
    }

    /// Whether `hash` is new (and remembers it).
    pub(crate) fn insert(&mut self, hash: u64) -> bool {
        if (self.current + self.previous + 1) * 2 > self.slots.len() && self.slots.len() < SLOTS {
            self.grow();
        }
        // Hashes 0..=3 share the key 2: 0 marks an empty slot.
        let key = (hash & !1).max(2);
        let mask = self.slots.len() - 1;
        let mut i = self.index(hash);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                break;
            }
            if slot & !1 == key {
                return false;
            }
            i = (i + 1) & mask;
        }
        self.slots[i] = key | self.parity;
        self.current += 1;
        if self.current >= GENERATION {
            self.next_generation();
        }
        true
    }

    /// Drops the previous generation; the current one becomes the previous.
    fn next_generation(&mut self) {
        let parity = self.parity;
        self.rebuild(self.slots.len(), |s| s & 1 == parity);
        self.parity ^= 1;
        self.previous = self.current;
        self.current = 0;
    }

    /// Doubles the table (or makes the first one).
    fn grow(&mut self) {
        let len = (self.slots.len() * 2).clamp(FIRST_SLOTS, SLOTS);
        self.rebuild(len, |_| true);
    }

    /// Re-inserts the entries that `keep` into an empty table of `len` slots.
    fn rebuild(&mut self, len: usize, keep: impl Fn(u64) -> bool) {
        self.keep.clear();
        self.keep.extend(self.slots.iter().copied().filter(|&s| s != 0 && keep(s)));
        self.slots.clear();
        self.slots.resize(len, 0);
        let mask = len - 1;
        for k in 0..self.keep.len() {
            let s = self.keep[k];
            let mut i = self.index(s);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }

    /// The home slot of a hash: its top bits (`rustc-hash` moves its best bits there).
    fn index(&self, hash: u64) -> usize {
        match self.slots.len() {
            0 => 0,
            len => (hash >> (64 - len.trailing_zeros())) as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The two-generation rule, written the obvious way.
    #[derive(Default)]
    struct Reference {
        current: HashSet<u64>,
        previous: HashSet<u64>,
    }

    impl Reference {
        fn insert(&mut self, hash: u64) -> bool {
            if self.previous.contains(&hash) || !self.current.insert(hash) {
                return false;
            }
            if self.current.len() >= GENERATION {
                self.previous = std::mem::take(&mut self.current);
            }
            true
        }
    }

    #[test]
    fn agrees_with_two_hash_sets_across_generations() {
        let mut seen = Seen::default();
        let mut reference = Reference::default();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        // Mostly new hashes, some repeated soon (redraws), some repeated much later (a line
        // coming back after generations), and clustered home slots (long probe runs).
        let mut history = Vec::new();
        for n in 0..(3 * GENERATION + 12_345) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let hash = match x % 10 {
                0 if !history.is_empty() => history[history.len() - 1 - (x as usize >> 8) % history.len().min(50)],
                1 if !history.is_empty() => history[(x as usize >> 8) % history.len()],
                2 => (x & 0xffff) | (7 << 58), // all in a few home slots
                _ => x,
            };
            history.push(hash);
            assert_eq!(seen.insert(hash), reference.insert(hash), "line {n}: {hash:#x}");
        }
        assert!(seen.insert(0), "a zero hash is a hash like any other");
        assert!(!seen.insert(0));
        assert!(!seen.insert(1), "hashes compare on their upper 63 bits");
    }

    #[test]
    fn touch_reads_without_remembering() {
        let mut seen = Seen::default();
        assert_eq!(seen.touch(42 << 40), 0);
        assert!(seen.insert(42 << 40));
        assert_ne!(seen.touch(42 << 40), 0);
        assert!(!seen.insert(42 << 40));
    }
}
