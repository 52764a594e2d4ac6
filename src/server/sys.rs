//! The few system calls std and mio do not wrap: the open-file limit, the
//! listen backlog, and signals delivered through a pipe.

use std::io;
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

/// Re-issues listen() with a deeper backlog than std's 128, so a login
/// storm of thousands of clients is not refused. Linux updates the backlog
/// of a socket that is already listening.
pub fn deepen_backlog(listener: &impl AsRawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: the fd is a valid listening socket owned by `listener`.
    if unsafe { libc::listen(listener.as_raw_fd(), backlog) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
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
pub fn reset_on_close(socket: &impl AsRawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads the struct we pass; the fd is a valid
    // socket owned by `socket`.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
