//! Criterion benchmarks of mp1d's hot paths: decoding each request kind,
//! encoding each reply kind, splitting a stream into objects, and fan-out
//! of one chat to thousands of connection queues (per recipient).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mp1::protocol::{decode_request, encode_line, AdminCommand, Reply, Splitter, Status};
use mp1::server::bench::FanOut;

const REQUESTS: &[(&str, &str)] = &[
    ("Login", r#"{"mtp": "Login", "data": {"name": "username"}}"#),
    (
        "SetUsername",
        r#"{"mtp": "SetUsername", "data": {"name": "new_name"}}"#,
    ),
    (
        "RequestUserInfo",
        r#"{"mtp": "RequestUserInfo", "data": {"name": "username"}}"#,
    ),
    (
        "RequestLocalTime",
        r#"{"mtp": "RequestLocalTime", "data": {}}"#,
    ),
    (
        "WhisperToUser",
        r#"{"mtp": "WhisperToUser", "data": {"to": ["user1", "user2", "user3"], "message": "hi"}}"#,
    ),
    (
        "SendChat",
        r#"{"mtp": "SendChat", "data": {"message": "hello everyone, how are you today?"}}"#,
    ),
    (
        "SendChat_unicode",
        r#"{"mtp": "SendChat", "data": {"message": "ma\u00f1ana \ud83d\ude00 \u65e5\u672c"}}"#,
    ),
    (
        "RequestOnlineList",
        r#"{"mtp": "RequestOnlineList", "data": {}}"#,
    ),
    ("Disconnect", r#"{"mtp": "Disconnect", "data": {}}"#),
    (
        "KickUser",
        r#"{"mtp": "KickUser", "data": {"name": "username"}}"#,
    ),
    (
        "MuteUser",
        r#"{"mtp": "MuteUser", "data": {"name": "username"}}"#,
    ),
    (
        "UnmuteUser",
        r#"{"mtp": "UnmuteUser", "data": {"name": "username"}}"#,
    ),
    (
        "SetAsAdmin",
        r#"{"mtp": "SetAsAdmin", "data": {"name": "username"}}"#,
    ),
];

fn replies() -> Vec<(&'static str, Reply)> {
    let s = |x: &str| x.to_string();
    vec![
        (
            "AssignUsername",
            Reply::AssignUsername {
                name: s("username"),
                status: Status::Ok,
            },
        ),
        (
            "SetUsername",
            Reply::SetUsername {
                name: s("username"),
                status: Status::DuplicateError,
            },
        ),
        (
            "ProvideUserInfo",
            Reply::ProvideUserInfo {
                name: s("username"),
                ip: s("192.168.1.1"),
                port: 15151,
                status: Status::Ok,
            },
        ),
        (
            "SendLocalTime",
            Reply::SendLocalTime {
                time: s("08:30:55"),
            },
        ),
        (
            "WhisperFromUser",
            Reply::WhisperFromUser {
                from: s("username"),
                message: s("hi"),
            },
        ),
        (
            "SendChatFromUser",
            Reply::SendChatFromUser {
                name: s("username"),
                message: s("hello everyone, how are you today?"),
            },
        ),
        (
            "SendChatFromUser_unicode",
            Reply::SendChatFromUser {
                name: s("José"),
                message: s("mañana 😀 日本"),
            },
        ),
        (
            "SendOnlineList",
            Reply::SendOnlineList {
                names: (0..20).map(|i| format!("user{i}")).collect(),
            },
        ),
        (
            "KickUser",
            Reply::Admin {
                command: AdminCommand::KickUser,
                name: s("username"),
                status: Status::Ok,
            },
        ),
        (
            "MuteUser",
            Reply::Admin {
                command: AdminCommand::MuteUser,
                name: s("username"),
                status: Status::UserAlreadyMuted,
            },
        ),
        (
            "UnmuteUser",
            Reply::Admin {
                command: AdminCommand::UnmuteUser,
                name: s("username"),
                status: Status::Ok,
            },
        ),
        (
            "SetAsAdmin",
            Reply::Admin {
                command: AdminCommand::SetAsAdmin,
                name: s("username"),
                status: Status::NotAdminError,
            },
        ),
        (
            "ServerMessage",
            Reply::server_message("username joined the server."),
        ),
        ("Disconnect", Reply::disconnect("Server closing.")),
    ]
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (name, json) in REQUESTS {
        g.bench_function(*name, |b| {
            b.iter(|| decode_request(black_box(json.as_bytes())).unwrap())
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    let mut out = Vec::with_capacity(512);
    for (name, reply) in replies() {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encode_line(black_box(&reply), &mut out);
            })
        });
    }
    g.finish();
}

fn split(c: &mut Criterion) {
    let mut stream = Vec::new();
    for _ in 0..100 {
        stream.extend_from_slice(REQUESTS[5].1.as_bytes());
        stream.push(b'\n');
    }
    let mut g = c.benchmark_group("split");
    g.throughput(Throughput::Elements(100));
    g.bench_function("100_chats_one_read", |b| {
        b.iter(|| {
            let mut s = Splitter::new();
            let mut n = 0;
            let mut frames = s.frames(black_box(&stream), 65536);
            while frames.next_frame().is_some() {
                n += 1;
            }
            n
        })
    });
    g.finish();
}

/// One chat to N queues: encode once, queue the shared bytes for every
/// recipient, then flush each queue (into a sink, so no syscall is timed).
fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    for n in [100usize, 1000, 5000] {
        let mut fan = FanOut::new(n);
        let reply = Reply::SendChatFromUser {
            name: "sender".into(),
            message: "x".repeat(64),
        };
        let mut buf = Vec::with_capacity(256);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("chat_to_queues", n), &n, |b, _| {
            b.iter(|| {
                buf.clear();
                encode_line(&reply, &mut buf);
                fan.chat(&buf);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode, encode, split, fanout);
criterion_main!(benches);
