//! What PID 1 (`init/`) works out without a system call, kept here so that
//! `cargo test` runs it on the host: init itself is a `no_main` binary for
//! the guest only.

use core::fmt;

/// The exit status of an `--exec` child whose execve(2) failed, as a
/// shell's "cannot execute": it prints why and exits with this, and PID 1,
/// told the errno through a close-on-exec pipe, reports `error` instead of
/// a verdict on the program.
pub const EXEC_FAILED: i32 = 127;

/// A `fmt::Write` into a fixed array: formatting that never allocates
/// (the panic path may run with the allocator exhausted). Output past the
/// end is dropped, whole characters at a time; the last byte is kept for
/// [`FixedBuf::end_line`].
pub struct FixedBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedBuf<N> {
    /// An empty buffer.
    pub const fn new() -> Self {
        const { assert!(N > 0, "FixedBuf needs room for the newline") };
        FixedBuf { buf: [0; N], len: 0 }
    }

    /// The text so far, as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The text so far.
    pub fn as_str(&self) -> &str {
        // Only whole UTF-8 sequences are ever copied in (see write_str).
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Ends the text with a newline, even when it was cut.
    pub fn end_line(&mut self) {
        // len <= N - 1 (write_str keeps the last byte free); a second
        // end_line overwrites the newline instead of running off the end.
        let at = self.len.min(N - 1);
        self.buf[at] = b'\n';
        self.len = at + 1;
    }
}

impl<const N: usize> Default for FixedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = (N - 1).saturating_sub(self.len);
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;

    #[test]
    fn fixed_buf_starts_empty() {
        let mut b = FixedBuf::<8>::new();
        assert_eq!((b.as_str(), b.as_bytes()), ("", &b""[..]));
        b.end_line();
        assert_eq!(b.as_str(), "\n");
    }

    #[test]
    fn fixed_buf_formats_what_fits() {
        let mut b = FixedBuf::<16>::new();
        write!(b, "errno {}", 22).unwrap();
        assert_eq!(b.as_str(), "errno 22");
        b.end_line();
        assert_eq!(b.as_bytes(), b"errno 22\n");
    }

    #[test]
    fn fixed_buf_cuts_and_keeps_room_for_the_newline() {
        let mut b = FixedBuf::<8>::new();
        write!(b, "0123456789").unwrap();
        assert_eq!(b.as_str(), "0123456");
        write!(b, "more").unwrap();
        assert_eq!(b.as_str(), "0123456");
        b.end_line();
        assert_eq!(b.as_str(), "0123456\n");
        // A second end_line cannot run past the end.
        b.end_line();
        assert_eq!(b.as_str(), "0123456\n");
    }

    #[test]
    fn fixed_buf_cuts_between_characters() {
        let mut b = FixedBuf::<6>::new();
        // "é" is two bytes: "abcdé" is 6, one more than the 5 that fit.
        write!(b, "abcdé").unwrap();
        assert_eq!(b.as_str(), "abcd");
        let mut b = FixedBuf::<4>::new();
        write!(b, "€").unwrap(); // three bytes: exactly fits
        write!(b, "x").unwrap();
        assert_eq!(b.as_str(), "€");
    }

    #[test]
    fn fixed_buf_of_one_holds_only_the_newline() {
        let mut b = FixedBuf::<1>::new();
        write!(b, "x").unwrap();
        assert_eq!(b.as_str(), "");
        b.end_line();
        assert_eq!(b.as_str(), "\n");
    }
}
