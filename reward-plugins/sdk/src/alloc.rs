//! The allocator [`export_reward!`](crate::export_reward) installs in wasm32 plugins: free lists
//! of power-of-two blocks in front of the system allocator (dlmalloc).
//!
//! Every rollout allocates the same few dozen small blocks (the strings the host passes in, the
//! metric names, the reason, the vectors around them) and frees them all before the next. Under
//! fuel metering dlmalloc costs a few hundred instructions per allocation and free; popping and
//! pushing a free list costs a few dozen. Blocks up to [`MAX_SIZE`] bytes are rounded up to a
//! power of two and kept on their size's list when freed, for the next allocation of that size;
//! larger ones (a long completion) go straight to the system allocator. The memory kept is at most
//! the most blocks of each size that were live at once, which a reused instance needs again for
//! its next rollout anyway.
//!
//! Only for wasm32 without the `atomics` feature: there is a single thread, so the lists need no
//! locking. Native builds (tests, the host's native baseline) use the system allocator. A plugin
//! that wants another allocator cannot also use `export_reward!` (two global allocators do not
//! link); it implements the generated bindings itself.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// The smallest block, and the alignment of every block.
const MIN_SIZE: usize = 16;
/// Block sizes: 16 B, 32 B, ..., 16 KiB.
const CLASSES: usize = 11;
/// The largest block kept on a list.
const MAX_SIZE: usize = MIN_SIZE << (CLASSES - 1);

/// Free lists of power-of-two blocks, 16 B to 16 KiB, over the system allocator.
pub struct SizeClasses {
    /// The head of each size's list of free blocks; a free block holds the next one's address.
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

// SAFETY: compiled only for wasm32 without threads (see the `cfg` on the static in lib.rs).
unsafe impl Sync for SizeClasses {}

impl SizeClasses {
    /// Empty lists.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        SizeClasses { free: UnsafeCell::new([ptr::null_mut(); CLASSES]) }
    }

    /// The size class of `layout`, if it is served from a list. A function of the layout only, so
    /// `dealloc` and `realloc`, which get the layout the block was allocated with, agree with
    /// `alloc`.
    #[inline]
    fn class(layout: Layout) -> Option<usize> {
        let size = layout.size();
        if size > MAX_SIZE || layout.align() > MIN_SIZE {
            return None;
        }
        if size <= MIN_SIZE {
            return Some(0);
        }
        // The smallest class whose block holds `size`: ceil(log2(size)) - log2(MIN_SIZE).
        Some((usize::BITS - (size - 1).leading_zeros() - MIN_SIZE.trailing_zeros()) as usize)
    }

    #[inline]
    fn block_layout(class: usize) -> Layout {
        // SAFETY: a power of two no larger than MAX_SIZE, aligned to MIN_SIZE (a power of two).
        unsafe { Layout::from_size_align_unchecked(MIN_SIZE << class, MIN_SIZE) }
    }
}

unsafe impl GlobalAlloc for SizeClasses {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = Self::class(layout) else {
            // SAFETY: the caller's layout, passed on.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: one thread, and no reference into the lists outlives this call.
        let free = unsafe { &mut *self.free.get() };
        let head = free[class];
        if head.is_null() {
            // SAFETY: a valid, non-zero layout.
            return unsafe { System.alloc(Self::block_layout(class)) };
        }
        // SAFETY: `head` is a free block of this class; its first word holds the next one.
        free[class] = unsafe { head.cast::<*mut u8>().read() };
        head
    }

    #[inline]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = Self::class(layout) else {
            // SAFETY: allocated by `System` with this layout (`class` is `None` for it there too).
            return unsafe { System.dealloc(block, layout) };
        };
        // SAFETY: one thread; `block` is at least MIN_SIZE bytes, aligned to MIN_SIZE, and no
        // longer used by the caller.
        let free = unsafe { &mut *self.free.get() };
        unsafe { block.cast::<*mut u8>().write(free[class]) };
        free[class] = block;
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if Self::class(layout).is_none() {
            // SAFETY: the caller's layout, passed on; fresh system memory may already be zero.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: as `alloc`; a reused block must be cleared.
        let block = unsafe { self.alloc(layout) };
        if !block.is_null() {
            unsafe { block.write_bytes(0, layout.size()) };
        }
        block
    }

    #[inline]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size`, rounded up to the alignment, does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (Self::class(layout), Self::class(new_layout)) {
            // The block already holds the new size.
            (Some(old), Some(new)) if old == new => block,
            // SAFETY: allocated by `System` with `layout`.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: as `alloc` and `dealloc`; the two blocks are distinct.
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                moved
            }
        }
    }
}
