//! Anonymous memory maps: bits shared by all children of one run
//! ([`SharedBits`]), words shared by the parent and its children
//! ([`shared_words`], what a child publishes for the parent), and the
//! relay's buffers ([`Region`], zeroed memory whose pages cost only once
//! written), and the parent's own memory that no child inherits
//! ([`ParentOnly`]).

use std::io;

/// A bit set in anonymous shared memory, created by the parent before it
/// forks, so that every child of one run sees the same bits (used to give
/// the FLEXlm vendor-port notice once per run).
pub struct SharedBits {
    /// The words of [`shared_words`], `bits.div_ceil(64)` of them.
    words: &'static [std::sync::atomic::AtomicU64],
}

impl SharedBits {
    /// `bits` bits, all clear; `None` if the mapping fails.
    pub fn new(bits: usize) -> Option<SharedBits> {
        let len = bits.div_ceil(64);
        let words = shared_words(len)?;
        Some(SharedBits {
            words: &words[..len],
        })
    }

    /// Word `w` (bits `64*w` to `64*w+63`) as an atomic counter shared by
    /// every process of the run; `None` past the end.
    pub fn word(&self, w: usize) -> Option<&std::sync::atomic::AtomicU64> {
        self.words.get(w)
    }

    /// Set bit `i`; true if it was clear (the first time in this run).
    pub fn set_first(&self, i: usize) -> bool {
        let (w, b) = (i / 64, i % 64);
        let Some(word) = self.word(w) else {
            return false;
        };
        let mask = 1u64 << b;
        word.fetch_or(mask, std::sync::atomic::Ordering::SeqCst) & mask == 0
    }
}

/// `n` zeroed 64-bit words in an anonymous shared mapping, made by the
/// parent before it forks and never unmapped, so the parent and every
/// child see the same words for the rest of the run; `None` if the
/// mapping fails.
pub fn shared_words(n: usize) -> Option<&'static [std::sync::atomic::AtomicU64]> {
    let n = n.max(1);
    // SAFETY: a fresh anonymous shared mapping; no existing memory is
    // touched; the result is checked against MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            n * 8,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the mapping holds n * 8 bytes, page aligned, zero-filled (a
    // valid AtomicU64 bit pattern), and is never unmapped, so 'static is
    // true; atomics make shared access from every process sound.
    Some(unsafe { std::slice::from_raw_parts(p.cast(), n) })
}

/// A zero-filled buffer whose pages cost memory only once written: from
/// the allocator as zeroed memory, which in a connection child is fresh
/// memory of the child's own arena (`os::heap`, never written before, so
/// nothing is cleared and no page of the parent's is touched), and which
/// glibc's malloc serves from a fresh mapping at relay-buffer sizes. In
/// the arena the buffer starts right after the child's small blocks, so
/// the first bytes read into it (a short exchange) land on a page the
/// child has written anyway.
pub struct Region {
    ptr: *mut u8,
    len: usize,
}

impl Region {
    /// `len` bytes (at least one).
    pub fn new(len: usize) -> io::Result<Region> {
        let layout = Region::layout(len)?;
        // SAFETY: a layout of non-zero size (at least one byte); the
        // result is checked for null.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        if p.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        Ok(Region {
            ptr: p,
            len: layout.size(),
        })
    }

    fn layout(len: usize) -> io::Result<std::alloc::Layout> {
        std::alloc::Layout::array::<u8>(len.max(1))
            .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))
    }
}

impl std::ops::Deref for Region {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len is a live mapping owned by self, readable
        // and zero-initialised.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl std::ops::DerefMut for Region {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref; &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: ptr was allocated by Region::new with this layout (len
        // is the layout's size, which Region::layout accepted then), and
        // is freed once.
        unsafe {
            std::alloc::dealloc(
                self.ptr,
                std::alloc::Layout::from_size_align_unchecked(self.len, 1),
            )
        };
    }
}

/// An allocator for the parent's own bookkeeping (the table of live
/// children): every block is an anonymous private mapping of its own,
/// marked `MADV_DONTFORK`, so no child inherits it. Whatever the parent
/// writes there between two forks is then no page of a child (a page the
/// parent writes after a fork is one its last child must keep a copy of),
/// and costs the parent no copy-on-write fault either. A child must never
/// touch a collection in this allocator (it has no such memory; the
/// server forgets them in the child without dropping them).
#[derive(Clone, Copy, Debug, Default)]
pub struct ParentOnly;

/// `len` rounded up to whole pages.
fn page_len(len: usize) -> Option<usize> {
    /// The smallest page size of the architectures ipprotd runs on; a
    /// larger real page only makes the kernel round up further.
    const PAGE: usize = 4096;
    len.checked_add(PAGE - 1).map(|l| l & !(PAGE - 1))
}

// SAFETY: allocate returns a fresh mapping of at least layout.size()
// bytes, page aligned (which covers every alignment up to a page; larger
// ones are refused), valid until deallocate unmaps exactly that mapping;
// blocks are never shared between allocations, and the allocator has no
// state, so copies of it are interchangeable.
unsafe impl allocator_api2::alloc::Allocator for ParentOnly {
    fn allocate(
        &self,
        layout: std::alloc::Layout,
    ) -> Result<std::ptr::NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        use allocator_api2::alloc::AllocError;
        if layout.size() == 0 {
            // a zero-sized block: any aligned non-null pointer
            let p = std::ptr::without_provenance_mut::<u8>(layout.align());
            let p = std::ptr::NonNull::new(p).ok_or(AllocError)?;
            return Ok(std::ptr::NonNull::slice_from_raw_parts(p, 0));
        }
        let len = page_len(layout.size()).ok_or(AllocError)?;
        if layout.align() > 4096 {
            return Err(AllocError);
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched; the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(AllocError);
        }
        // SAFETY: p..p+len is the mapping just made; MADV_DONTFORK only
        // sets a flag on it. Without the flag the block would still be
        // correct memory, only inherited: on failure it is given back.
        if unsafe { libc::madvise(p, len, libc::MADV_DONTFORK) } != 0 {
            // SAFETY: the mapping just made, unmapped once.
            unsafe { libc::munmap(p, len) };
            return Err(AllocError);
        }
        let p = std::ptr::NonNull::new(p.cast::<u8>()).ok_or(AllocError)?;
        Ok(std::ptr::NonNull::slice_from_raw_parts(p, len))
    }

    unsafe fn deallocate(&self, ptr: std::ptr::NonNull<u8>, layout: std::alloc::Layout) {
        if layout.size() == 0 {
            return;
        }
        if let Some(len) = page_len(layout.size()) {
            // SAFETY: the caller gives back a block of this allocator with
            // its layout: the mapping allocate made, of this length.
            unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_only_collections_grow_and_shrink() {
        let mut m = hashbrown::HashMap::with_hasher_in(
            std::collections::hash_map::RandomState::new(),
            ParentOnly,
        );
        let mut v = allocator_api2::vec::Vec::new_in(ParentOnly);
        for i in 0..20_000u32 {
            m.insert(i, [i; 8]);
            v.push(i);
        }
        for i in (0..20_000u32).step_by(2) {
            assert_eq!(m.remove(&i), Some([i; 8]));
        }
        m.shrink_to_fit();
        v.truncate(3);
        v.shrink_to_fit();
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.get(&19_999), Some(&[19_999; 8]));
        assert_eq!(&v[..], &[0, 1, 2]);
        // zero-sized and empty: no mapping at all
        let e: allocator_api2::vec::Vec<(), ParentOnly> =
            allocator_api2::vec::Vec::new_in(ParentOnly);
        assert!(e.is_empty());
    }
}
