//! A FIFO of fixed-size chunks that are reused, never reallocated. The event queue holds parsed
//! messages of several hundred bytes each, and under a flood its backlog reaches tens of
//! megabytes: a `VecDeque` grows there by doubling, copying everything it holds each time onto
//! freshly faulted-in pages, and the consumer's deque (they swap) does the same. Here growth is
//! one more chunk, nothing moves, and a drained chunk waits in `spare` for the next push.

use std::collections::VecDeque;

/// Items per chunk: small enough that an idle queue holds little, large enough that a chunk
/// changes hands rarely.
const CHUNK: usize = 128;

pub struct ChunkedDeque<T> {
    /// Only the first chunk is ever popped and only the last is pushed to: every chunk between
    /// them is full, which makes `get_mut` arithmetic.
    chunks: VecDeque<VecDeque<T>>,
    spare: Vec<VecDeque<T>>,
    len: usize,
}

impl<T> Default for ChunkedDeque<T> {
    fn default() -> Self {
        ChunkedDeque {
            chunks: VecDeque::new(),
            spare: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedDeque<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push_back(&mut self, item: T) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < CHUNK => last.push_back(item),
            _ => {
                let mut chunk = self
                    .spare
                    .pop()
                    .unwrap_or_else(|| VecDeque::with_capacity(CHUNK));
                chunk.push_back(item);
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
    }

    pub fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        for item in items {
            self.push_back(item);
        }
    }

    pub fn pop_front(&mut self) -> Option<T> {
        let first = self.chunks.front_mut()?;
        let item = first.pop_front()?;
        if first.is_empty() {
            let chunk = self.chunks.pop_front().expect("the front chunk");
            self.spare.push(chunk);
        }
        self.len -= 1;
        Some(item)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let first = self.chunks.front()?.len();
        if index < first {
            return self.chunks[0].get_mut(index);
        }
        let rest = index - first;
        self.chunks.get_mut(1 + rest / CHUNK)?.get_mut(rest % CHUNK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a `VecDeque` as the reference, through pushes, pops and writes by index that
    /// cross chunk boundaries, including a swap of two queues as the event queue does.
    #[test]
    fn behaves_as_a_vecdeque() {
        let mut ours: ChunkedDeque<u64> = ChunkedDeque::default();
        let mut reference: VecDeque<u64> = VecDeque::new();
        let mut other: ChunkedDeque<u64> = ChunkedDeque::default();
        let mut next = 0u64;
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            match seed % 7 {
                0..=2 => {
                    let n = (seed >> 8) % 300;
                    ours.extend(next..next + n);
                    reference.extend(next..next + n);
                    next += n;
                }
                3 | 4 => {
                    for _ in 0..(seed >> 8) % 200 {
                        assert_eq!(ours.pop_front(), reference.pop_front(), "step {step}");
                    }
                }
                5 if !reference.is_empty() => {
                    let i = (seed >> 8) as usize % reference.len();
                    *ours.get_mut(i).unwrap() += 1_000_000_000;
                    reference[i] += 1_000_000_000;
                }
                _ => {
                    // The consumer's swap of a drained queue for the full one: the spares travel
                    // along.
                    assert!(other.is_empty());
                    std::mem::swap(&mut ours, &mut other);
                    while let Some(v) = other.pop_front() {
                        assert_eq!(Some(v), reference.pop_front(), "step {step}");
                    }
                    std::mem::swap(&mut ours, &mut other);
                }
            }
            assert_eq!(ours.len(), reference.len());
            assert_eq!(ours.is_empty(), reference.is_empty());
            assert!(ours.get_mut(reference.len()).is_none());
        }
    }

    #[test]
    fn drained_chunks_are_reused() {
        let mut q: ChunkedDeque<u32> = ChunkedDeque::default();
        q.extend(0..(CHUNK as u32) * 3);
        while q.pop_front().is_some() {}
        assert_eq!(q.spare.len(), 3);
        q.extend(0..(CHUNK as u32) * 2);
        assert_eq!(q.spare.len(), 1);
        assert_eq!(q.chunks.len(), 2);
    }
}
