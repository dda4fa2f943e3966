//! libdeflate's whole-buffer gzip decoder, one member at a time.
//!
//! Bodies arrive whole, so nothing needs a streaming inflater: libdeflate inflates a
//! typical 1.4 KB gzip body into its 14 KB at 2.2–2.7 times zlib-rs's speed, and every
//! gzip envelope is inflated twice (checked when acknowledged, read again when processed).
//! The safe wrapper crate has no call that says where a member ends, which a body of
//! several members needs, so this module calls the `_ex` function itself.
#![allow(unsafe_code)]

use std::ptr::NonNull;

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE as NO_ROOM,
    libdeflate_result_LIBDEFLATE_SUCCESS as SUCCESS,
};

/// Why a member was not inflated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MemberError {
    /// Not a gzip member, damaged, or its CRC-32 or size does not match its trailer.
    Corrupt,
    /// The member inflates to more than the output has room for.
    NoRoom,
}

/// An owned libdeflate decompressor, reused across calls.
pub(crate) struct Inflater(NonNull<libdeflate_decompressor>);

impl Inflater {
    /// `None` when the allocation failed.
    pub(crate) fn new() -> Option<Inflater> {
        // SAFETY: allocating takes no arguments; a null result is handled.
        NonNull::new(unsafe { libdeflate_alloc_decompressor() }).map(Inflater)
    }

    /// Inflates the gzip member at the start of `input` into the start of `out`, checking
    /// its trailer. Returns the bytes of `input` the member took and the bytes written.
    pub(crate) fn member(
        &mut self,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(usize, usize), MemberError> {
        let (mut read, mut written) = (0usize, 0usize);
        // SAFETY: the decompressor is live and used by one caller at a time (`&mut self`);
        // the input and output pointers come with their slices' lengths, and libdeflate
        // reads and writes only within them; both result pointers are valid locals.
        let result = unsafe {
            libdeflate_gzip_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut read,
                &mut written,
            )
        };
        match result {
            SUCCESS if read <= input.len() && written <= out.len() => Ok((read, written)),
            NO_ROOM => Err(MemberError::NoRoom),
            _ => Err(MemberError::Corrupt),
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `libdeflate_alloc_decompressor` and is freed once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}
