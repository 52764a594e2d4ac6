//! The same tool probe as the root package's (see `../build.rs`): the
//! Redis tests here show as ignored, with the reason, where redis-server
//! is not installed.

#[path = "../build.rs"]
mod probe;

fn main() {
    probe::main();
}
