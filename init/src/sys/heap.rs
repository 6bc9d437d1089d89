//! The global allocator. Blocks up to a page come in size classes kept on
//! free lists ([`repros::guest::heap`], tested on the host), cut from
//! mmap'd chunks; larger blocks are mapped one by one, unmapped when freed
//! and grown with mremap. Memory is given back: a repro can allocate and
//! free for as long as it runs.
//!
//! PID 1 has threads (`cx.spawn`), so the free lists are behind a spin
//! lock; [`lock`] also lets fork(2) take it, so that the child never
//! inherits it held by a thread that does not exist there.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

use repros::guest::heap::{class, FreeLists, Memory, CHUNK, PAGE};
use rustix::mm::{MapFlags, MremapFlags, ProtFlags};

struct Heap {
    locked: AtomicBool,
    lists: UnsafeCell<FreeLists>,
}

// SAFETY: `lists` is only touched through a `Guard`, which holds `locked`.
unsafe impl Sync for Heap {}

#[global_allocator]
static HEAP: Heap = Heap { locked: AtomicBool::new(false), lists: UnsafeCell::new(FreeLists::new()) };

/// The free lists, held: dropping it unlocks them.
pub struct Guard(());

/// Takes the allocator's lock, spinning (and after a while yielding the
/// CPU, for a holder that was preempted) until it is free.
pub fn lock() -> Guard {
    let mut spins = 0u32;
    while HEAP.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        spins += 1;
        if spins.is_multiple_of(64) {
            rustix::thread::sched_yield();
        } else {
            core::hint::spin_loop();
        }
    }
    Guard(())
}

impl Guard {
    fn lists(&mut self) -> &mut FreeLists {
        // SAFETY: a Guard exists only while `locked` is held, and this
        // borrow of the guard is the only way to the lists.
        unsafe { &mut *HEAP.lists.get() }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        HEAP.locked.store(false, Ordering::Release);
    }
}

/// Free blocks and chunks as the bookkeeping sees them: addresses.
struct Blocks;

impl Memory for Blocks {
    fn next(&self, block: usize) -> usize {
        // SAFETY: FreeLists reads links only of blocks on its lists: free,
        // inside a mapped chunk, aligned to at least 16.
        unsafe { ptr::with_exposed_provenance::<usize>(block).read() }
    }

    fn set_next(&mut self, block: usize, next: usize) {
        // SAFETY: FreeLists writes links only into blocks it is listing as
        // free (freshly cut, or freed by their owner): nobody else uses them.
        unsafe { ptr::with_exposed_provenance_mut::<usize>(block).write(next) }
    }

    fn chunk(&mut self) -> Option<usize> {
        map(CHUNK).map(|p| p.expose_provenance())
    }
}

/// A fresh private mapping of `len` bytes (rounded up to pages), zeroed.
fn map(len: usize) -> Option<*mut u8> {
    // SAFETY: a new anonymous mapping at an address of the kernel's choice
    // overlaps nothing of ours.
    unsafe { rustix::mm::mmap_anonymous(ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE) }
        .ok()
        .map(|p| p.cast())
}

// SAFETY: small blocks come from the free lists, which hand out each block
// once until it is freed, aligned to its size (at least the layout's size
// and alignment); large ones are mappings of their own, page aligned
// (alignments above a page get null). Null means out of memory.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout.size(), layout.align()) {
            Some(c) => lock().lists().alloc(c, &mut Blocks).map_or(ptr::null_mut(), ptr::with_exposed_provenance_mut),
            None if layout.align() <= PAGE => map(layout.size()).unwrap_or(ptr::null_mut()),
            None => ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class(layout.size(), layout.align()) {
            Some(c) => lock().lists().free(c, ptr.expose_provenance(), &mut Blocks),
            // SAFETY: a block of this layout is a mapping of its own, of
            // this size rounded up to pages, that the caller gives up.
            None => drop(unsafe { rustix::mm::munmap(ptr.cast::<c_void>(), layout.size()) }),
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        match (class(layout.size(), align), class(new_size, align)) {
            // The block already has room.
            (Some(old), Some(new)) if old == new => return ptr,
            (None, None) => {
                // SAFETY: both sizes are of a mapping of its own, which
                // mremap may move; the caller gives up the old address.
                let moved =
                    unsafe { rustix::mm::mremap(ptr.cast::<c_void>(), layout.size(), new_size, MremapFlags::MAYMOVE) };
                return moved.map_or(ptr::null_mut(), |p| p.cast());
            }
            _ => {}
        }
        // SAFETY: the caller's layout is valid, and new_size with the same
        // alignment is, as GlobalAlloc::realloc requires of its caller.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        // SAFETY: a valid layout of non-zero size.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct and at least this long;
            // then the old one is given back with the layout it came with.
            unsafe {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}
