//! Bytes waiting for a non-blocking socket: write as much as it takes now,
//! keep the rest for its next writable event. For the clients (the
//! terminal program, loadgen), whose output is small; the server's
//! fan-out uses shared output queues instead (`server::output`).

use std::io::{self, Write};

/// Writes from the front of `pending` until it is empty or `w` would
/// block; what was written is removed.
/// (The front is dropped once, at the end: linear in the bytes however
/// many writes it takes.)
pub fn write_pending(w: &mut impl Write, pending: &mut Vec<u8>) -> io::Result<()> {
    let mut written = 0;
    let result = loop {
        if written == pending.len() {
            break Ok(());
        }
        match w.write(&pending[written..]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    pending.drain(..written);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TakesThree(Vec<u8>, usize);

    impl Write for TakesThree {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.1 == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.1 -= 1;
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn keeps_what_the_socket_did_not_take() {
        let mut w = TakesThree(Vec::new(), 2);
        let mut pending = b"abcdefgh".to_vec();
        write_pending(&mut w, &mut pending).unwrap();
        assert_eq!(
            (w.0.as_slice(), pending.as_slice()),
            (&b"abcdef"[..], &b"gh"[..])
        );
        w.1 = 5;
        write_pending(&mut w, &mut pending).unwrap();
        assert!(pending.is_empty());
        assert_eq!(w.0, b"abcdefgh");
    }
}
