//! Anonymous memory maps: bits shared by all children of one run
//! ([`SharedBits`]), words shared by the parent and its children
//! ([`shared_words`], what a child publishes for the parent), and the
//! relay's private buffers ([`Region`]), which bypass the allocator so a
//! forked child copies no allocator pages.

use std::io;

/// A bit set in anonymous shared memory, created by the parent before it
/// forks, so that every child of one run sees the same bits (used to give
/// the FLEXlm vendor-port notice once per run).
pub struct SharedBits {
    words: *const std::sync::atomic::AtomicU64,
    len: usize,
}

// SAFETY: the mapping is only ever accessed through atomics (`AtomicU64`
// words), it is never unmapped, and the pointer is never written: sharing
// or sending the handle between threads cannot cause a data race.
unsafe impl Send for SharedBits {}
// SAFETY: as for Send.
unsafe impl Sync for SharedBits {}

impl SharedBits {
    /// `bits` bits, all clear; `None` if the mapping fails.
    pub fn new(bits: usize) -> Option<SharedBits> {
        let len = bits.div_ceil(64);
        let bytes = len * 8;
        // SAFETY: a fresh anonymous shared mapping; no existing memory is
        // touched; the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(SharedBits {
            words: p.cast(),
            len,
        })
    }

    /// Word `w` (bits `64*w` to `64*w+63`) as an atomic counter shared by
    /// every process of the run; `None` past the end.
    pub fn word(&self, w: usize) -> Option<&std::sync::atomic::AtomicU64> {
        if w >= self.len {
            return None;
        }
        // SAFETY: as in set_first: w < len, inside a live, zeroed,
        // page-aligned mapping that is never unmapped.
        Some(unsafe { &*self.words.add(w) })
    }

    /// Set bit `i`; true if it was clear (the first time in this run).
    pub fn set_first(&self, i: usize) -> bool {
        let (w, b) = (i / 64, i % 64);
        if w >= self.len {
            return false;
        }
        // SAFETY: w < len, inside the mapping, which lives as long as the
        // process (never unmapped); the mapping is zero-initialised, a
        // valid AtomicU64 bit pattern, and 8-byte aligned (page aligned).
        let word = unsafe { &*self.words.add(w) };
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

/// A zero-filled buffer in its own anonymous mapping: no allocator state
/// is touched (in a forked child every touched page is a private copy), and
/// its pages cost memory only once written.
pub struct Region {
    ptr: *mut u8,
    len: usize,
}

impl Region {
    /// Map `len` bytes (at least one).
    pub fn new(len: usize) -> io::Result<Region> {
        let len = len.max(1);
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
            return Err(io::Error::last_os_error());
        }
        Ok(Region { ptr: p.cast(), len })
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
        // SAFETY: the mapping was made by Region::new and is unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}
