//! The daemon's allocator ([`ForkHeap`], `#[global_allocator]` of
//! `src/main.rs`): glibc's malloc in the parent, and in a connection child,
//! from [`enter_child`] on, an arena of its own in fresh anonymous memory.
//!
//! Why: a forked child shares the parent's heap copy-on-write, and glibc's
//! malloc, asked for a few small blocks, writes its per-thread cache (one
//! page), the parent's freed chunks it reuses (scattered over the heap,
//! one page each) and `main_arena` (libc's data pages): every page it
//! writes is one the child must copy (measured: 2 heap pages for a plain
//! idle child, 9 heap and 2 libc pages for a recording one). In the arena
//! the child's blocks lie next to each other in pages nobody else has.
//!
//! The arena: one reserved range of address space (`PROT_NONE`, so it
//! costs neither memory nor commit charge until used), made read-write in
//! steps as it fills; blocks of power-of-two classes carved in order, a
//! free list per class (the link in the freed block), freed blocks of 64
//! KiB and more give their whole pages back (`MADV_DONTNEED`). A block the
//! parent allocated is never given to glibc in the child (that would write
//! glibc's pages): freeing it does nothing, growing it copies it into the
//! arena. The arena belongs to the thread that entered it (the child's only
//! thread), through a thread-local pointer: that lives in the static TLS
//! block, on the thread-control-block page the kernel writes in every child
//! anyway, and no other thread can ever see the arena.
//!
//! Hand-written rather than a crate because what it needs is the switch
//! at the fork (the same process, two allocators, the parent's blocks
//! left alone) and the state on the first page of the child's own blocks;
//! the arena itself is the simplest that stays bounded over a long
//! connection (memory is reused per class, large blocks' pages given
//! back), not a general-purpose allocator: the child's allocations are few.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr;

/// The smallest page size of the architectures ipprotd runs on.
const PAGE: usize = 4096;
/// Address space reserved per range (a block that needs more gets a range
/// of its size; less where the address space is limited).
const RANGE: usize = 1 << 30;
/// The read-write part of a range grows in steps of this much.
const COMMIT: usize = 64 * 1024;
/// The smallest class: 16 bytes, also the alignment every block has.
const MIN_SHIFT: u32 = 4;
/// Classes 2^4 to 2^47 bytes, more than any range can hold.
const CLASSES: usize = 44;
/// Freed blocks of at least this size give their whole pages back.
const RELEASE: usize = 64 * 1024;
/// At most this many ranges; beyond, an allocation fails (and the child
/// aborts, as on any allocation failure). One as a rule.
const MAX_RANGES: usize = 32;

/// The state of one child's arena, at the start of its first range.
#[repr(C)]
struct Arena {
    /// Head of each class's free list (null: empty).
    free: [*mut u8; CLASSES],
    /// Next unused byte of the current range.
    bump: usize,
    /// End of the read-write part of the current range.
    committed: usize,
    /// End of the current range.
    end: usize,
    /// Every range, `(start, end)`: what the arena owns.
    ranges: [(usize, usize); MAX_RANGES],
    n_ranges: usize,
}

/// Not in a child (glibc's malloc).
const PARENT: usize = 0;
/// In a child whose arena is not made yet (no allocation so far).
const CHILD_NO_ARENA: usize = 1;

thread_local! {
    /// [`PARENT`], [`CHILD_NO_ARENA`] or the address of this thread's
    /// [`Arena`]. A constant initialiser and no destructor: a plain
    /// thread-local word, safe to use inside the allocator.
    static ARENA: Cell<usize> = const { Cell::new(PARENT) };
}

/// In a fresh connection child, right after the fork: from now on this
/// thread's allocations come from an arena of its own (made at the first
/// one). Does nothing unless [`ForkHeap`] is the global allocator.
pub fn enter_child() {
    if ARENA.get() == PARENT {
        ARENA.set(CHILD_NO_ARENA);
    }
}

/// The class of a block of `size` bytes: its index and size.
fn class_of(size: usize) -> Option<(usize, usize)> {
    let size = size.max(1 << MIN_SHIFT);
    let shift = usize::BITS - (size - 1).leading_zeros();
    let index = (shift - MIN_SHIFT) as usize;
    (index < CLASSES).then(|| (index, 1usize << shift))
}

fn align_up(v: usize, a: usize) -> Option<usize> {
    v.checked_add(a - 1).map(|x| x & !(a - 1))
}

/// Reserve address space, inaccessible: [`RANGE`] bytes, or `need` if
/// that is more, or less down to `need` where the address space is
/// limited (`ulimit -v`); the start and length, `None` on failure.
fn reserve(need: usize) -> Option<(usize, usize)> {
    let need = align_up(need.max(COMMIT), PAGE)?;
    let mut len = need.max(RANGE);
    loop {
        // SAFETY: a fresh private anonymous mapping without access; no
        // existing memory is touched; the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            return Some((p as usize, len));
        }
        if len == need {
            return None;
        }
        len = align_up(len / 2, PAGE)?.max(need);
    }
}

/// Make `from..to` (page aligned, inside a reserved range) read-write.
fn commit(from: usize, to: usize) -> bool {
    // SAFETY: from..to lies in a range this arena reserved and owns.
    unsafe {
        libc::mprotect(
            from as *mut libc::c_void,
            to - from,
            libc::PROT_READ | libc::PROT_WRITE,
        ) == 0
    }
}

impl Arena {
    /// A new arena in a range of its own; `None` if the kernel refuses.
    fn create() -> Option<*mut Arena> {
        let (base, len) = reserve(COMMIT)?;
        if !commit(base, base + COMMIT) {
            return None;
        }
        let a = base as *mut Arena;
        let state = align_up(std::mem::size_of::<Arena>(), 1 << MIN_SHIFT)?;
        let mut ranges = [(0, 0); MAX_RANGES];
        ranges[0] = (base, base + len);
        // SAFETY: base..base+COMMIT is fresh read-write memory, page
        // aligned, large enough for the state.
        unsafe {
            a.write(Arena {
                free: [ptr::null_mut(); CLASSES],
                bump: base + state,
                committed: base + COMMIT,
                end: base + len,
                ranges,
                n_ranges: 1,
            })
        };
        Some(a)
    }

    fn owns(&self, p: usize) -> bool {
        self.ranges[..self.n_ranges]
            .iter()
            .any(|&(s, e)| s <= p && p < e)
    }

    /// A block for `layout`, or null.
    fn alloc(&mut self, layout: Layout, zeroed: bool) -> *mut u8 {
        let Some((c, size)) = class_of(layout.size().max(layout.align())) else {
            return ptr::null_mut();
        };
        let align = layout.align().max(1 << MIN_SHIFT);
        // the head of the class's list, if it is aligned enough (blocks
        // asked for with a larger alignment are reused too: a connection
        // that keeps making and dropping them must not keep carving)
        let head = self.free[c];
        if !head.is_null() && (head as usize).is_multiple_of(align) {
            let p = head;
            // SAFETY: p is a freed block of class c of this arena; its
            // first word holds the next free block of the class.
            self.free[c] = unsafe { p.cast::<*mut u8>().read() };
            if zeroed {
                // SAFETY: p holds `size` bytes of this arena.
                unsafe { p.write_bytes(0, layout.size()) };
            }
            return p;
        }
        // fresh memory: never handed out, so still zero
        self.carve(size, align)
    }

    /// `size` bytes at `align` from the unused rest, a new range if needed.
    fn carve(&mut self, size: usize, align: usize) -> *mut u8 {
        let fits = |a: &Arena| {
            align_up(a.bump, align)
                .and_then(|p| p.checked_add(size).map(|e| (p, e)))
                .filter(|&(_, e)| e <= a.end)
        };
        let (p, e) = match fits(self) {
            Some(x) => x,
            None => {
                if self.n_ranges == MAX_RANGES {
                    return ptr::null_mut();
                }
                let Some((base, len)) = size.checked_add(align).and_then(reserve) else {
                    return ptr::null_mut();
                };
                self.ranges[self.n_ranges] = (base, base + len);
                self.n_ranges += 1;
                self.bump = base;
                self.committed = base;
                self.end = base + len;
                match fits(self) {
                    Some(x) => x,
                    None => return ptr::null_mut(),
                }
            }
        };
        if e > self.committed {
            let Some(to) = align_up(e, COMMIT).map(|t| t.min(self.end)) else {
                return ptr::null_mut();
            };
            if !commit(self.committed, to) {
                return ptr::null_mut();
            }
            self.committed = to;
        }
        self.bump = e;
        p as *mut u8
    }

    /// Give back a block of this arena that was allocated with `layout`.
    fn dealloc(&mut self, p: *mut u8, layout: Layout) {
        let Some((c, size)) = class_of(layout.size().max(layout.align())) else {
            return;
        };
        if size >= RELEASE {
            let from = align_up(p as usize + std::mem::size_of::<usize>(), PAGE);
            let to = (p as usize + size) & !(PAGE - 1);
            if let Some(from) = from.filter(|&f| f < to) {
                // SAFETY: whole pages inside the freed block, which nobody
                // uses any more; they read as zero if touched again.
                unsafe { libc::madvise(from as *mut libc::c_void, to - from, libc::MADV_DONTNEED) };
            }
        }
        // SAFETY: p is a block of class c of this arena, at least 16
        // bytes, 16-aligned, no longer in use: its first word is free
        // for the link.
        unsafe { p.cast::<*mut u8>().write(self.free[c]) };
        self.free[c] = p;
    }
}

/// The arena of this thread, made if it is a child without one yet;
/// `None` in the parent (or if the arena cannot be made: then the child
/// allocates nothing more, and aborts as on any allocation failure).
fn arena(make: bool) -> Option<Option<&'static mut Arena>> {
    match ARENA.get() {
        PARENT => None,
        CHILD_NO_ARENA if !make => Some(None),
        CHILD_NO_ARENA => {
            let a = Arena::create();
            if let Some(a) = a {
                ARENA.set(a as usize);
            }
            // SAFETY: the arena just made, used by this thread alone.
            Some(a.map(|a| unsafe { &mut *a }))
        }
        // SAFETY: the arena this thread made; only this thread has its
        // address (a thread-local), and the allocator is not reentered
        // while the reference lives (the arena calls no allocating code).
        a => Some(Some(unsafe { &mut *(a as *mut Arena) })),
    }
}

/// The global allocator of ipprotd, see the module doc.
pub struct ForkHeap;

// SAFETY: in the parent every call goes to System unchanged. In a child
// every block comes from the thread's own arena: fresh memory, aligned to
// at least the layout's alignment (class sizes are powers of two at least
// the alignment, carved at the alignment), at least layout.size() bytes,
// never handed out twice until freed; blocks the parent allocated are
// never freed or reused there, and growing one copies it into the arena.
unsafe impl GlobalAlloc for ForkHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match arena(true) {
            // SAFETY: the caller's contract, passed on.
            None => unsafe { System.alloc(layout) },
            Some(Some(a)) => a.alloc(layout, false),
            Some(None) => ptr::null_mut(),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match arena(true) {
            // SAFETY: the caller's contract, passed on.
            None => unsafe { System.alloc_zeroed(layout) },
            Some(Some(a)) => a.alloc(layout, true),
            Some(None) => ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match arena(false) {
            // SAFETY: the caller's contract, passed on.
            None => unsafe { System.dealloc(p, layout) },
            Some(Some(a)) if a.owns(p as usize) => a.dealloc(p, layout),
            // the parent's block: left alone
            Some(_) => {}
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(arena) = arena(true) else {
            // SAFETY: the caller's contract, passed on.
            return unsafe { System.realloc(p, layout, new_size) };
        };
        let Some(a) = arena else {
            return ptr::null_mut();
        };
        let ours = a.owns(p as usize);
        if ours
            && class_of(layout.size().max(layout.align())) == class_of(new_size.max(layout.align()))
        {
            return p;
        }
        // SAFETY: the caller guarantees a valid layout for new_size with
        // the same alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let q = a.alloc(new_layout, false);
        if !q.is_null() {
            // SAFETY: p holds layout.size() bytes, q new_size; distinct
            // blocks.
            unsafe { ptr::copy_nonoverlapping(p, q, layout.size().min(new_size)) };
            if ours {
                a.dealloc(p, layout);
            }
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `f` in a thread of its own that entered a child arena, with
    /// `ForkHeap` called directly (the tests' global allocator is glibc's).
    fn in_child<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::spawn(move || {
            enter_child();
            f()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn classes() {
        assert_eq!(class_of(0), Some((0, 16)));
        assert_eq!(class_of(16), Some((0, 16)));
        assert_eq!(class_of(17), Some((1, 32)));
        assert_eq!(class_of(4096), Some((8, 4096)));
        assert_eq!(class_of(usize::MAX), None);
    }

    #[test]
    fn blocks_are_aligned_distinct_and_reused() {
        in_child(|| {
            let h = ForkHeap;
            let mut blocks = Vec::new();
            for (i, (size, align)) in [
                (1, 1),
                (24, 8),
                (100, 64),
                (5000, 4096),
                (70_000, 16),
                (3, 2),
            ]
            .into_iter()
            .cycle()
            .take(60)
            .enumerate()
            {
                let l = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero sizes, valid layouts.
                let p = unsafe { h.alloc_zeroed(l) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0);
                // SAFETY: p holds size bytes.
                let s = unsafe { std::slice::from_raw_parts_mut(p, size) };
                assert!(s.iter().all(|&b| b == 0));
                s.fill(i as u8);
                blocks.push((p, l, i as u8));
            }
            for &(p, l, v) in &blocks {
                // SAFETY: p holds l.size() bytes.
                let s = unsafe { std::slice::from_raw_parts(p, l.size()) };
                assert!(s.iter().all(|&b| b == v), "block overwritten");
            }
            let (p0, l0, _) = blocks[1];
            // SAFETY: a block of this heap with its layout.
            unsafe { h.dealloc(p0, l0) };
            // SAFETY: a valid layout.
            let again = unsafe { h.alloc(l0) };
            assert_eq!(again, p0, "a freed block of the class is reused");
        });
    }

    #[test]
    fn realloc_keeps_bytes_and_parent_blocks_are_left_alone() {
        // a block glibc gave before the child entered its arena
        let parent = Layout::from_size_align(40, 8).unwrap();
        // SAFETY: a valid layout.
        let pb = unsafe { System.alloc(parent) } as usize;
        // SAFETY: pb holds 40 bytes.
        unsafe { (pb as *mut u8).write_bytes(7, 40) };
        in_child(move || {
            let h = ForkHeap;
            let pb = pb as *mut u8;
            // growing the parent's block copies it into the arena
            // SAFETY: pb was allocated with `parent`.
            let q = unsafe { h.realloc(pb, parent, 10_000) };
            assert!(!q.is_null() && q != pb);
            // SAFETY: q holds 10 000 bytes, the first 40 copied.
            let copied = unsafe { std::slice::from_raw_parts(q, 40) };
            assert!(copied.iter().all(|&b| b == 7));
            // freeing the parent's block in the child changes nothing
            // SAFETY: as above.
            unsafe { h.dealloc(pb, parent) };
            // SAFETY: pb is still glibc's, untouched.
            let kept = unsafe { std::slice::from_raw_parts(pb, 40) };
            assert!(kept.iter().all(|&b| b == 7));
            let mut v: Vec<u8> = Vec::new();
            let mut p = ptr::null_mut::<u8>();
            let mut cap = 0;
            for i in 0..100_000usize {
                v.push(i as u8);
                if v.len() > cap {
                    let new = (cap * 2).max(8);
                    p = if p.is_null() {
                        // SAFETY: a valid layout.
                        unsafe { h.alloc(Layout::from_size_align(new, 1).unwrap()) }
                    } else {
                        // SAFETY: p was allocated with size cap, align 1.
                        unsafe { h.realloc(p, Layout::from_size_align(cap, 1).unwrap(), new) }
                    };
                    cap = new;
                }
                // SAFETY: p holds cap >= v.len() bytes.
                unsafe { p.add(i).write(i as u8) };
            }
            // SAFETY: p holds 100 000 bytes written above.
            assert_eq!(unsafe { std::slice::from_raw_parts(p, v.len()) }, &v[..]);
            // SAFETY: p with its layout.
            unsafe { h.dealloc(p, Layout::from_size_align(cap, 1).unwrap()) };
        });
        // SAFETY: the parent's block, with its layout.
        unsafe { System.dealloc(pb as *mut u8, parent) };
    }

    #[test]
    fn blocks_of_a_large_alignment_are_reused_too() {
        in_child(|| {
            let h = ForkHeap;
            let l = Layout::from_size_align(200, 128).unwrap();
            // SAFETY: a valid layout.
            let first = unsafe { h.alloc(l) };
            assert!(!first.is_null() && (first as usize).is_multiple_of(128));
            for _ in 0..1000 {
                // SAFETY: the block just allocated, with its layout.
                unsafe { h.dealloc(first, l) };
                // SAFETY: a valid layout.
                let again = unsafe { h.alloc(l) };
                assert_eq!(again, first, "carved anew instead of reused");
            }
            // SAFETY: as above.
            unsafe { h.dealloc(first, l) };
        });
    }

    #[test]
    fn a_block_larger_than_a_range_gets_its_own() {
        in_child(|| {
            let h = ForkHeap;
            let l = Layout::from_size_align(RANGE + 1, 16).unwrap();
            // SAFETY: a valid layout.
            let p = unsafe { h.alloc(l) };
            assert!(!p.is_null());
            // SAFETY: p holds RANGE + 1 bytes; the last page is touched.
            unsafe { p.add(RANGE).write(1) };
            // SAFETY: p with its layout.
            unsafe { h.dealloc(p, l) };
        });
    }
}
