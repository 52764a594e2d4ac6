//! Several mp1d nodes serving one chat through Redis (`--cluster`, issue
//! 12; see docs/design/cluster.md). Built so far: the Redis connection's
//! protocol state, and the scripts for login, logout, rename, chat,
//! whisper and the admin commands.

pub mod redis;
pub mod scripts;
