//! Several mp1d nodes serving one chat through Redis (`--cluster`, issue
//! 12; see docs/design/cluster.md). Built so far: the Redis connection's
//! protocol state, and the scripts for login, logout, rename, chat,
//! whisper, the admin commands, and reaping a dead node's users.

pub mod redis;
pub mod scripts;
