//! The ring itself (see `uring.rs`), on the targets the `io-uring` crate
//! has bindings for.

use crate::chat::ConnId;
use crate::server::block::Block;
use crate::server::output::{Flushed, OutQueue};
use crate::server::table::Table;
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use mio::Registry;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

/// Submission entries: the widest flush expected goes in one submission;
/// a wider one goes in chunks of this many.
const ENTRIES: u32 = 4096;
/// Ranges one entry sends. A connection owing more (rare: consecutive
/// broadcasts share one range) is flushed with `writev` instead.
pub const IOVECS: usize = 16;
/// `io_uring_enter` failing with a transient error this many times in a
/// row, with nothing in flight, gives the ring up.
const MAX_RETRIES: u32 = 1000;

// Not in every libc the static builds use; the kernel's values.
const IORING_ENTER_GETEVENTS: u32 = 1 << 0;
const IORING_ENTER_REGISTERED_RING: u32 = 1 << 4;
const IORING_REGISTER_RING_FDS: u32 = 20;

/// One submission's storage, reused: what its send reads from.
struct Slot {
    key: ConnId,
    /// Bytes submitted.
    len: usize,
    iov: [libc::iovec; IOVECS],
    msg: libc::msghdr,
    /// The blocks the iovecs point into, held until the completion.
    held: Vec<Rc<Block>>,
}

impl Slot {
    fn new() -> Box<Slot> {
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        Box::new(Slot {
            key: ConnId(0),
            len: 0,
            iov: [empty; IOVECS],
            // SAFETY: msghdr is plain data; all zeroes is a valid empty one.
            msg: unsafe { std::mem::zeroed() },
            held: Vec::with_capacity(IOVECS),
        })
    }

    /// Points the slot at `out`'s ranges (at most [`IOVECS`]), holding
    /// their blocks, and returns the entry that sends them to `fd`.
    fn prepare(&mut self, key: ConnId, out: &OutQueue, fd: RawFd, index: usize) -> squeue::Entry {
        self.key = key;
        self.len = 0;
        self.held.clear();
        let mut n = 0;
        for (block, bytes) in out.ranges(IOVECS) {
            self.iov[n] = libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            };
            self.len += bytes.len();
            self.held.push(Rc::clone(block));
            n += 1;
        }
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let entry = if n == 1 {
            let len = u32::try_from(self.len).unwrap_or(u32::MAX);
            opcode::Send::new(types::Fd(fd), self.iov[0].iov_base as *const u8, len)
                .flags(flags)
                .build()
        } else {
            self.msg.msg_iov = self.iov.as_mut_ptr();
            // usize on glibc, c_int on musl: a count of at most IOVECS.
            self.msg.msg_iovlen = n as _;
            opcode::SendMsg::new(types::Fd(fd), &self.msg)
                .flags(flags as u32)
                .build()
        };
        entry.user_data(index as u64)
    }
}

/// What one completion means for its connection.
#[derive(Debug)]
pub enum Completed {
    /// This many bytes went out, then: the queue is empty (`All`), or the
    /// socket took less than it was given or refused (`Blocked`: wait for
    /// room), or the connection failed.
    Wrote(usize, io::Result<Flushed>),
    /// Interrupted before anything was sent: send again.
    Again,
}

/// A completion's result `res` for a send of `submitted` bytes from the
/// front of `out`: advances `out` by what was written and says what
/// follows (as `OutQueue::flush` would have).
pub fn complete(res: i32, submitted: usize, out: &mut OutQueue) -> Completed {
    if res < 0 {
        return match -res {
            libc::EAGAIN => Completed::Wrote(0, Ok(Flushed::Blocked)),
            libc::EINTR => Completed::Again,
            errno => Completed::Wrote(0, Err(io::Error::from_raw_os_error(errno))),
        };
    }
    let written = res as usize;
    if written == 0 && submitted > 0 {
        return Completed::Wrote(0, Err(io::ErrorKind::WriteZero.into()));
    }
    let written = written.min(submitted);
    if out.wrote(written) {
        Completed::Wrote(written, Ok(Flushed::All))
    } else {
        // Short, or the queue held more than one entry sends: the socket
        // had no room for the rest, or will be asked next flush.
        Completed::Wrote(written, Ok(Flushed::Blocked))
    }
}

pub struct Uring {
    ring: IoUring,
    /// The registered ring fd's index, used instead of the fd.
    registered: Option<u32>,
    /// Boxed: an entry points into its slot, which must not move when
    /// the list grows.
    #[allow(clippy::vec_box)]
    slots: Vec<Box<Slot>>,
    /// What the kernel gave, for the start-up log.
    setup: String,
}

impl Uring {
    /// A ring with the best set-up the kernel takes, checked to do what
    /// the flush needs; why not, otherwise.
    pub fn new() -> Result<Uring, String> {
        Uring::with_entries(ENTRIES)
    }

    /// ... of `entries` submission entries (a flush wider than that goes
    /// in chunks).
    pub fn with_entries(entries: u32) -> Result<Uring, String> {
        let (ring, setup) =
            build_ring(entries).map_err(|e| format!("cannot create a ring: {e}"))?;
        let mut probe = Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(|e| format!("cannot probe its operations: {e}"))?;
        for (code, name) in [
            (opcode::Send::CODE, "SEND"),
            (opcode::SendMsg::CODE, "SENDMSG"),
        ] {
            if !probe.is_supported(code) {
                return Err(format!("the kernel does not support {name}"));
            }
        }
        let mut uring = Uring {
            ring,
            registered: None,
            slots: Vec::new(),
            setup,
        };
        uring.registered = register_ring_fd(uring.ring.as_raw_fd());
        if uring.registered.is_some() {
            uring.setup.push_str(", registered ring fd");
        }
        uring.check_nowait()?;
        uring.setup = format!(
            "{} entries, {}",
            uring.ring.params().sq_entries(),
            uring.setup
        );
        Ok(uring)
    }

    /// What the kernel gave (flags, entries), for the start-up log.
    pub fn setup(&self) -> &str {
        &self.setup
    }

    /// A send to a full socket must complete at once with `EAGAIN`, not
    /// wait for room: the flush waits for every completion.
    fn check_nowait(&mut self) -> Result<(), String> {
        let (a, _b) = std::os::unix::net::UnixStream::pair().map_err(|e| e.to_string())?;
        a.set_nonblocking(true).map_err(|e| e.to_string())?;
        // Static: valid whatever the kernel does with the send.
        static FILL: [u8; 4096] = [0; 4096];
        while matches!(io::Write::write(&mut &a, &FILL), Ok(n) if n > 0) {}
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let entry = opcode::Send::new(types::Fd(a.as_raw_fd()), FILL.as_ptr(), 1)
            .flags(flags)
            .build()
            .user_data(u64::MAX);
        // SAFETY: the bytes are static; the kernel holds the socket.
        unsafe { self.ring.submission().push(&entry) }.map_err(|_| "no room".to_string())?;
        self.enter(1, 0)
            .map_err(|e| format!("cannot submit: {e}"))?;
        let res = self.ring.completion().next().map(|c| c.result());
        match res {
            Some(r) if r == -libc::EAGAIN => Ok(()),
            Some(r) => Err(format!("a send to a full socket gave {r}, not EAGAIN")),
            None => Err("a send to a full socket waits instead of failing at once".into()),
        }
    }

    /// `io_uring_enter`: submits `submit` entries, waits for `wait`
    /// completions, and runs the deferred completion work (GETEVENTS).
    fn enter(&self, submit: usize, wait: usize) -> io::Result<usize> {
        let (submit, wait) = (submit as u32, wait as u32);
        let Some(index) = self.registered else {
            // SAFETY: no argument; a flag every kernel with io_uring knows.
            return unsafe {
                self.ring.submitter().enter::<libc::sigset_t>(
                    submit,
                    wait,
                    IORING_ENTER_GETEVENTS,
                    None,
                )
            };
        };
        let flags = IORING_ENTER_GETEVENTS | IORING_ENTER_REGISTERED_RING;
        // SAFETY: io_uring_enter on our registered ring, with no argument.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                index as libc::c_long,
                submit as libc::c_long,
                wait as libc::c_long,
                flags as libc::c_long,
                std::ptr::null::<libc::c_void>(),
                0 as libc::c_long,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r as usize)
        }
    }

    /// Flushes every connection the table owes output, one submission
    /// entry each. `Err` if the ring failed: what it had not sent was sent
    /// with `writev`, and the caller goes on without it.
    pub fn flush(&mut self, table: &mut Table, registry: &Registry) -> Result<(), String> {
        loop {
            let n = self.queue(table, registry);
            if n == 0 {
                return Ok(());
            }
            self.round(n, table, registry)?;
        }
    }

    /// Queues one entry for each connection owed output, as many as the
    /// ring takes; returns how many.
    fn queue(&mut self, table: &mut Table, registry: &Registry) -> usize {
        let Uring { ring, slots, .. } = self;
        let mut sq = ring.submission();
        let mut n = 0;
        while !sq.is_full() {
            let Some(key) = table.next_to_flush() else {
                break;
            };
            let conn = table.get_mut(key).expect("a connection to flush");
            let ranges = conn.out.ranges(IOVECS + 1).count();
            if ranges == 0 || ranges > IOVECS {
                // Nothing to send (a close to complete), or more than one
                // entry takes.
                table.flush_one(registry, key);
                continue;
            }
            if slots.len() == n {
                slots.push(Slot::new());
            }
            let entry = slots[n].prepare(key, &conn.out, conn.stream.as_raw_fd(), n);
            // SAFETY: what the entry points at (the slot's msghdr and
            // iovecs, the blocks it holds, the socket, which is closed only
            // when the table frees the connection at the end of the turn)
            // stays valid until its completion is reaped, in `round`, before
            // `flush` returns.
            unsafe { sq.push(&entry) }.expect("the queue is not full");
            n += 1;
        }
        n
    }

    /// Submits the `n` entries queued, and handles their completions.
    fn round(&mut self, n: usize, table: &mut Table, registry: &Registry) -> Result<(), String> {
        let (mut submitted, mut reaped, mut retries) = (0, 0, 0);
        let mut failure = None;
        while reaped < submitted || (failure.is_none() && submitted < n) {
            let submit = if failure.is_none() { n - submitted } else { 0 };
            let wait = usize::from(submit == 0);
            match self.enter(submit, wait) {
                Ok(k) => {
                    submitted += k.min(submit);
                    retries = 0;
                }
                Err(e) if transient(&e) && retries < MAX_RETRIES => retries += 1,
                // Submit nothing more; wait for what is in flight.
                Err(e) if failure.is_none() => failure = Some(e),
                Err(e) => panic!("io_uring: sends in flight cannot be reaped: {e}"),
            }
            let Uring { ring, slots, .. } = self;
            for cqe in ring.completion() {
                reaped += 1;
                Self::completed(&mut slots[cqe.user_data() as usize], &cqe, table, registry);
            }
        }
        let Some(e) = failure else {
            return Ok(());
        };
        // The ring failed: what it did not take goes out by writev.
        for slot in &mut self.slots[submitted..n] {
            slot.held.clear();
            table.flush_one(registry, slot.key);
        }
        Err(format!("io_uring_enter failed: {e}"))
    }

    fn completed(slot: &mut Slot, cqe: &cqueue::Entry, table: &mut Table, registry: &Registry) {
        slot.held.clear();
        let key = slot.key;
        let conn = table
            .get_mut(key)
            .expect("nothing frees a connection during a flush");
        match complete(cqe.result(), slot.len, &mut conn.out) {
            Completed::Wrote(written, result) => table.flushed(registry, key, written, result),
            Completed::Again => table.flush_one(registry, key),
        }
    }
}

fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
    )
}

/// The ring, with the first set of flags in this list the kernel takes.
fn build_ring(entries: u32) -> io::Result<(IoUring, String)> {
    let mut last = io::Error::from_raw_os_error(libc::ENOSYS);
    for level in 0..4 {
        let mut b = IoUring::builder();
        let setup = match level {
            0 => {
                b.setup_single_issuer()
                    .setup_defer_taskrun()
                    .setup_coop_taskrun()
                    .setup_submit_all();
                "single issuer, deferred task work, cooperative task run"
            }
            1 => {
                b.setup_coop_taskrun().setup_submit_all();
                "cooperative task run"
            }
            2 => {
                b.setup_submit_all();
                "plain"
            }
            _ => "plain (without SUBMIT_ALL)",
        };
        b.setup_cqsize(entries * 2);
        match b.build(entries) {
            Ok(ring) => return Ok((ring, setup.to_string())),
            // Not allowed at all: no flags will help.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                return Err(e)
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Registers the ring's fd with itself, so that each enter skips the fd
/// lookup; its index, or `None` where the kernel cannot (before 5.18).
fn register_ring_fd(fd: RawFd) -> Option<u32> {
    #[repr(C)]
    struct RsrcUpdate {
        offset: u32,
        resv: u32,
        data: u64,
    }
    let mut up = RsrcUpdate {
        offset: u32::MAX,
        resv: 0,
        data: fd as u64,
    };
    // SAFETY: IORING_REGISTER_RING_FDS reads and writes one rsrc_update.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            fd as libc::c_long,
            IORING_REGISTER_RING_FDS as libc::c_long,
            &mut up as *mut RsrcUpdate,
            1 as libc::c_long,
        )
    };
    (r == 1).then_some(up.offset)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
