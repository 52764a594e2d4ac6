//! The few system calls std and mio do not wrap: the open-file limit, the
//! listen backlog and socket options (through `socket2`), what the kernel
//! holds for a socket, and signals delivered through a pipe.

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Raises the soft open-file limit to the hard limit; returns the limit
/// now in force.
// rlim_t is u64 on 64-bit targets but u32 on 32-bit ARM.
#[allow(clippy::useless_conversion)]
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write `lim`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return u64::from(want.rlim_cur);
            }
        }
    }
    u64::from(lim.rlim_cur)
}

/// A non-blocking listening socket on `addr` with a deeper backlog than
/// std's 128, so a login storm of thousands of clients is not refused.
pub fn listen(addr: SocketAddr, backlog: i32) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

/// Bounds what the kernel holds for one client to about half of
/// `limit`, the client's output limit, leaving the other half for the
/// server's own queue (Linux doubles the value set, for its bookkeeping,
/// and caps it at `net.core.wmem_max`). Without it, autotuning lets a
/// client that never reads hold megabytes of kernel memory.
pub fn bound_send_buffer(stream: &mio::net::TcpStream, limit: usize) {
    let _ = SockRef::from(stream).set_send_buffer_size((limit / 4).max(4096));
}

/// Bytes the kernel still holds for a socket (unsent or unacknowledged):
/// `SIOCOUTQ`. Zero where it cannot tell.
pub fn unsent_in_kernel(socket: &impl AsRawFd) -> usize {
    #[cfg(target_os = "linux")]
    {
        let mut n: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ on a TCP socket) writes one int to
        // `n`; the fd is a valid socket owned by `socket`.
        let ok = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut n) } == 0;
        if ok {
            return usize::try_from(n).unwrap_or(0);
        }
    }
    let _ = socket;
    0
}

/// Whether an accept() error means we are out of file descriptors or
/// memory: the pending connection stays queued, so retrying at once spins.
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// SIGINT and SIGTERM each write a byte to the returned stream, which the
/// loop registers for READABLE.
pub fn shutdown_signals() -> io::Result<mio::net::UnixStream> {
    let (read, write) = std::os::unix::net::UnixStream::pair()?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, write.try_clone()?)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, write)?;
    Ok(mio::net::UnixStream::from_std(read))
}

/// Hands freed heap pages back to the kernel. A login storm queues
/// millions of short-lived announcement slots; glibc keeps the freed pages
/// mapped, so without this the resident size stays at the storm's peak.
/// (musl's allocator returns memory by itself.)
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Makes the next close of `socket` reset the connection: the kernel frees
/// its buffers at once, instead of keeping unsent bytes for a peer that
/// stopped reading (FIN-WAIT-1 for minutes).
pub fn reset_on_close(socket: &mio::net::TcpStream) {
    let _ = SockRef::from(socket).set_linger(Some(std::time::Duration::ZERO));
}
