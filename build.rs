//! Finds the tools some integration tests drive (redis-server, tmux,
//! Chromium with Selenium, nginx with its stream module, root and `ip` for
//! network namespaces) and tells the tests with a `--cfg` each:
//! `have_redis`, `have_tmux`, `have_browser`, `have_nginx`, `have_netns`,
//! and `have_io_uring` when this machine lets a process set up an io_uring
//! (a kernel from 5.1 on, not turned off by `kernel.io_uring_disabled` or
//! a seccomp profile): the tests of `mp1d --io-uring on` need one. Unlike
//! the others, `with_io_uring` does affect the binaries: the target is one
//! the `io-uring` crate has bindings for, and mp1d is built with it.
//! A test that needs a missing tool is marked
//! `#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]`,
//! so cargo's own summary counts it as `ignored` and says why, instead of
//! an `ok` that ran nothing. With every tool installed every test runs.
//!
//! `#[ignore]` is decided at compile time, so the probe must run again when
//! a tool appears or goes: the script is rerun when PATH changes, when any
//! system directory on PATH changes (installing or removing a program
//! changes its directory; directories under the user's home are left out,
//! since pyenv's and the like change with every new shell), and when
//! Debian's package database changes (apt, which is
//! how `.ci/run` installs them, also covers python3-selenium and nginx's
//! modules, which are not programs on PATH). Nothing here affects the
//! binaries: only tests read these cfgs.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CFGS: &[&str] = &[
    "have_redis",
    "have_tmux",
    "have_browser",
    "have_nginx",
    "have_netns",
    "have_io_uring",
    "with_io_uring",
];

pub fn main() {
    for cfg in CFGS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    let path = env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = env::split_paths(&path).collect();
    for extra in ["/usr/sbin", "/sbin"] {
        if !dirs.iter().any(|d| d == Path::new(extra)) {
            dirs.push(extra.into());
        }
    }
    let home = env::var_os("HOME").map(PathBuf::from);
    for d in &dirs {
        // Only directories that exist: a missing one would make cargo
        // rerun the script (and rebuild the crate) on every build. Not the
        // user's own (pyenv's shims, say, change whenever a shell starts,
        // which rebuilt the crate at every `cargo run` in a new terminal):
        // the tools come from the system's directories.
        let own = home.as_ref().is_some_and(|h| d.starts_with(h));
        if d.is_dir() && !own {
            println!("cargo::rerun-if-changed={}", d.display());
        }
    }
    if Path::new("/var/lib/dpkg/status").exists() {
        println!("cargo::rerun-if-changed=/var/lib/dpkg/status");
    }

    let find = |tool: &str| dirs.iter().map(|d| d.join(tool)).find(|p| p.is_file());
    let have = |tool: &str| find(tool).is_some();
    let runs = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };

    let mut on = Vec::new();
    if have("redis-server") {
        on.push("have_redis");
    }
    if have("tmux") {
        on.push("have_tmux");
    }
    // The browser tests run Debian's python3 (its packages), not whichever
    // python3 comes first on PATH.
    let browser = Path::new("/usr/bin/chromium").is_file()
        && Path::new("/usr/bin/chromedriver").is_file()
        && runs("/usr/bin/python3", &["-c", "import selenium"]);
    if browser {
        on.push("have_browser");
    }
    let nginx = find("nginx").is_some_and(|n| stream_module(&n)) && have("openssl");
    if nginx {
        on.push("have_nginx");
    }
    if is_root() && have("ip") {
        on.push("have_netns");
    }
    // The io-uring crate has bindings for these targets only (Cargo.toml
    // lists the same); elsewhere mp1d is built without it.
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let uring_arch = ["x86_64", "aarch64", "riscv64", "loongarch64", "powerpc64"];
    let with_io_uring = os == "linux" && uring_arch.contains(&arch.as_str());
    if with_io_uring {
        on.push("with_io_uring");
    }
    // Tests run where they are built, unless cross-compiled.
    if with_io_uring && env::var("TARGET").ok() == env::var("HOST").ok() && io_uring_works() {
        on.push("have_io_uring");
    }
    for cfg in on {
        println!("cargo::rustc-cfg={cfg}");
    }
}

/// nginx can proxy TCP: its stream module is built in or installed
/// (Debian: libnginx-mod-stream).
fn stream_module(nginx: &Path) -> bool {
    let Ok(out) = Command::new(nginx).arg("-V").output() else {
        return false;
    };
    let said = String::from_utf8_lossy(&out.stderr);
    said.split_whitespace().any(|w| w == "--with-stream")
        || Path::new("/usr/lib/nginx/modules/ngx_stream_module.so").is_file()
}

/// Whether io_uring_setup(2) succeeds here. (A change of the sysctl does
/// not rerun this script: `cargo clean -p mp1` after one.)
fn io_uring_works() -> bool {
    #[cfg(target_os = "linux")]
    {
        // struct io_uring_params: 120 bytes, all zero for a plain ring.
        let mut params = [0u64; 15];
        // SAFETY: io_uring_setup writes within the 120 bytes of `params`;
        // the fd it returns is closed at once.
        unsafe {
            let fd = libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr());
            if fd >= 0 {
                libc::close(fd as libc::c_int);
                return true;
            }
        }
    }
    false
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}
