//! The bookkeeping of PID 1's allocator, with no memory access of its own,
//! so that it is tested here on the host; `init/src/sys/heap.rs` is the
//! allocator itself (pointers, mmap, the lock).
//!
//! Small blocks come in size classes, 16 bytes to one page, each a power of
//! two. A class whose free list is empty takes a whole page from the
//! current chunk (an mmap'd region) and cuts it into blocks of its size, so
//! every block is aligned to its size. A freed block goes on its class's
//! free list, linked through its first word. Pages are never given back:
//! memory freed in one class is reused by that class. Larger blocks are
//! mapped one by one and unmapped when freed (not here: see init).

/// The smallest block: two words, so a free block holds its link.
pub const MIN_BLOCK: usize = 16;
/// The page size blocks are cut from; also the largest small block.
pub const PAGE: usize = 4096;
/// Number of size classes: 16, 32, ..., 4096.
pub const CLASSES: usize = (PAGE.trailing_zeros() - MIN_BLOCK.trailing_zeros() + 1) as usize;
/// How much a chunk holds: what one mmap(2) gets when the pages run out.
pub const CHUNK: usize = 1 << 20;

/// The class of a block holding `size` bytes aligned to `align` (a power
/// of two); `None` when that is more than a page: such a block is mapped
/// on its own.
pub fn class(size: usize, align: usize) -> Option<usize> {
    let need = size.max(align).max(MIN_BLOCK).checked_next_power_of_two()?;
    (need <= PAGE).then(|| (need.trailing_zeros() - MIN_BLOCK.trailing_zeros()) as usize)
}

/// The size of the blocks of class `class`.
pub const fn block_size(class: usize) -> usize {
    MIN_BLOCK << class
}

/// What the bookkeeping needs from memory: the link word of a free block,
/// and fresh chunks.
pub trait Memory {
    /// The link stored in free block `block`.
    fn next(&self, block: usize) -> usize;
    /// Stores `next` as the link of free block `block`.
    fn set_next(&mut self, block: usize, next: usize);
    /// The address of a fresh, page-aligned region of [`CHUNK`] bytes, or
    /// `None` when there is no more memory.
    fn chunk(&mut self) -> Option<usize>;
}

/// The free lists and the current chunk. Address 0 is the end of a list.
#[derive(Debug)]
pub struct FreeLists {
    heads: [usize; CLASSES],
    /// The next unused page of the current chunk, and the chunk's end.
    pages: usize,
    end: usize,
}

impl Default for FreeLists {
    fn default() -> Self {
        Self::new()
    }
}

impl FreeLists {
    /// Empty lists and no chunk yet.
    pub const fn new() -> Self {
        FreeLists { heads: [0; CLASSES], pages: 0, end: 0 }
    }

    /// A block of class `class`, or `None` when memory ran out.
    pub fn alloc(&mut self, class: usize, mem: &mut impl Memory) -> Option<usize> {
        if self.heads[class] == 0 {
            self.refill(class, mem)?;
        }
        let block = self.heads[class];
        self.heads[class] = mem.next(block);
        Some(block)
    }

    /// Gives back `block`, which [`FreeLists::alloc`] handed out for
    /// `class` and nobody uses any more.
    pub fn free(&mut self, class: usize, block: usize, mem: &mut impl Memory) {
        mem.set_next(block, self.heads[class]);
        self.heads[class] = block;
    }

    /// Cuts a fresh page into blocks of `class` and lists them, lowest
    /// address first.
    fn refill(&mut self, class: usize, mem: &mut impl Memory) -> Option<()> {
        if self.pages == self.end {
            let chunk = mem.chunk()?;
            (self.pages, self.end) = (chunk, chunk + CHUNK);
        }
        let page = self.pages;
        self.pages += PAGE;
        let size = block_size(class);
        let mut next = 0;
        for block in (page..page + PAGE).step_by(size).rev() {
            mem.set_next(block, next);
            next = block;
        }
        self.heads[class] = next;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::collections::{BTreeMap, HashMap};
    use std::vec::Vec;

    /// Memory as a map of link words; chunks from a counter, up to a limit.
    struct FakeMemory {
        links: HashMap<usize, usize>,
        next_chunk: usize,
        chunks_left: usize,
    }

    impl FakeMemory {
        fn new(chunks: usize) -> Self {
            FakeMemory { links: HashMap::new(), next_chunk: 0x1000_0000, chunks_left: chunks }
        }
        fn chunks_used(&self) -> usize {
            (self.next_chunk - 0x1000_0000) / CHUNK
        }
    }

    impl Memory for FakeMemory {
        fn next(&self, block: usize) -> usize {
            *self.links.get(&block).expect("read the link of a block that is not free")
        }
        fn set_next(&mut self, block: usize, next: usize) {
            self.links.insert(block, next);
        }
        fn chunk(&mut self) -> Option<usize> {
            self.chunks_left = self.chunks_left.checked_sub(1)?;
            let c = self.next_chunk;
            self.next_chunk += CHUNK;
            Some(c)
        }
    }

    #[test]
    fn classes_cover_size_and_alignment() {
        assert_eq!(CLASSES, 9);
        assert_eq!(class(0, 1), Some(0));
        assert_eq!(class(1, 1), Some(0));
        assert_eq!(class(16, 8), Some(0));
        assert_eq!(class(17, 8), Some(1));
        assert_eq!(class(24, 8), Some(1));
        assert_eq!(class(8, 64), Some(2));
        assert_eq!(class(4096, 8), Some(8));
        assert_eq!(class(4097, 8), None);
        assert_eq!(class(8, 8192), None);
        assert_eq!(class(usize::MAX, 1), None);
        for c in 0..CLASSES {
            assert_eq!(class(block_size(c), 1), Some(c));
        }
    }

    #[test]
    fn freed_blocks_are_reused_far_beyond_one_chunk() {
        // 4 chunks of memory; a million blocks of mixed classes, freed 64
        // at a time, add up to some 900 MiB.
        let mut mem = FakeMemory::new(4);
        let mut lists = FreeLists::new();
        let mut live: BTreeMap<usize, usize> = BTreeMap::new();
        let mut held = Vec::new();
        let mut total = 0usize;
        for round in 0..1_000_000usize {
            let c = round % CLASSES;
            let block = lists.alloc(c, &mut mem).expect("out of memory although everything was freed");
            let size = block_size(c);
            total += size;
            assert_eq!(block % size, 0, "class {c} block {block:#x} not aligned to its size");
            // No live block overlaps the new one.
            if let Some((&start, &len)) = live.range(..block + size).next_back() {
                assert!(start + len <= block, "{block:#x}+{size} overlaps {start:#x}+{len}");
            }
            live.insert(block, size);
            held.push((c, block));
            if held.len() == 64 {
                // Free in an order other than allocation order.
                for (c, b) in held.drain(..).rev() {
                    live.remove(&b);
                    lists.free(c, b, &mut mem);
                }
            }
        }
        assert!(total > 800 * CHUNK, "the test must go far beyond the memory it has");
        assert!(mem.chunks_used() <= 1, "used {} chunks", mem.chunks_used());
    }

    #[test]
    fn running_out_is_none_and_freeing_recovers() {
        let mut mem = FakeMemory::new(1);
        let mut lists = FreeLists::new();
        let pages: Vec<usize> = (0..CHUNK / PAGE).map(|_| lists.alloc(CLASSES - 1, &mut mem).unwrap()).collect();
        assert_eq!(lists.alloc(CLASSES - 1, &mut mem), None);
        assert_eq!(lists.alloc(0, &mut mem), None);
        lists.free(CLASSES - 1, pages[7], &mut mem);
        assert_eq!(lists.alloc(CLASSES - 1, &mut mem), Some(pages[7]));
    }

    #[test]
    fn a_page_is_cut_into_blocks_lowest_first() {
        let mut mem = FakeMemory::new(1);
        let mut lists = FreeLists::new();
        let a = lists.alloc(0, &mut mem).unwrap();
        let b = lists.alloc(0, &mut mem).unwrap();
        assert_eq!(b, a + 16);
        let c = lists.alloc(8, &mut mem).unwrap();
        assert_eq!(c, a + PAGE, "a new class takes the next page");
        for _ in 2..PAGE / 16 {
            lists.alloc(0, &mut mem).unwrap();
        }
        assert_eq!(lists.alloc(0, &mut mem).unwrap(), a + 2 * PAGE);
    }
}
