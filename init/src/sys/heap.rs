//! The global allocator: a bump allocator over one static arena in .bss
//! (free in the file, zero pages until touched). PID 1 runs one short repro,
//! so memory is only given back when the most recent block is freed.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

const ARENA_SIZE: usize = 32 << 20;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);

// SAFETY: disjoint parts of the arena are handed out through the atomic
// `NEXT`; no two live allocations overlap.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_SIZE]));
/// Offset of the first free byte in the arena.
static NEXT: AtomicUsize = AtomicUsize::new(0);

struct Bump;

#[global_allocator]
static ALLOCATOR: Bump = Bump;

// SAFETY: alloc returns blocks inside ARENA, aligned as asked, that do not
// overlap any live block; it returns null when the arena is full.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = ARENA.0.get() as usize;
        let mut next = NEXT.load(Ordering::Relaxed);
        loop {
            let start = (base + next).next_multiple_of(layout.align()) - base;
            let Some(end) = start.checked_add(layout.size()).filter(|&end| end <= ARENA_SIZE) else {
                return ptr::null_mut();
            };
            match NEXT.compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (base + start) as *mut u8,
                Err(now) => next = now,
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Give the block back only if it is the last one handed out.
        let start = ptr as usize - ARENA.0.get() as usize;
        let _ = NEXT.compare_exchange(start + layout.size(), start, Ordering::Relaxed, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize - ARENA.0.get() as usize;
        let end = start + layout.size();
        // The last block grows or shrinks in place.
        if let Some(new_end) = start.checked_add(new_size).filter(|&e| e <= ARENA_SIZE) {
            if NEXT.compare_exchange(end, new_end, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                return ptr;
            }
        }
        // SAFETY: the caller's layout is valid, and new_size with the same
        // alignment is, as GlobalAlloc::realloc requires of its caller.
        let new = unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct and at least this long.
            unsafe { ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}
