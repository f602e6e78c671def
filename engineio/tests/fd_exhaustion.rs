//! Out of file descriptors (issue #12): the accept loop neither spins nor
//! dies, existing clients keep working, and new connections are accepted again
//! once descriptors free up.
//!
//! The test runs itself again as a child process under `ulimit -n 256`, so
//! that the low limit touches no other test; the child fills the rest of its
//! descriptor table with `/dev/null` handles.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

use std::time::Duration;

use engineio::EngineConfig;
use support::{Server, assert_held, finish_request, start_request, ws_recv_text, ws_send_text};

const CHILD: &str = "ENGINEIO_FD_EXHAUSTION_CHILD";

#[test]
fn accepts_pause_while_out_of_file_descriptors_and_resume_after() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" "$@""#)
        .arg(exe)
        .args([
            "--exact",
            "accepts_pause_while_out_of_file_descriptors_and_resume_after",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("child: done"), "child did not run:\n{text}");
}

fn child() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = Server::start(EngineConfig::default()).await;
        let (mut ws, _, _) = server.ws_open().await;
        // Take every descriptor left.
        let mut filler = Vec::new();
        while let Ok(f) = std::fs::File::open("/dev/null") {
            filler.push(f);
            assert!(
                filler.len() < 100_000,
                "the descriptor limit was not lowered"
            );
        }
        // One for the new client's socket; the server then has none to accept it with.
        filler.pop();
        let mut pending =
            start_request(server.addr, "GET", "/engine.io/?EIO=4&transport=polling").await;
        assert_held(&mut pending, Duration::from_millis(500)).await;
        // The existing client is unaffected.
        ws_send_text(&mut ws, "4still here").await;
        assert_eq!(ws_recv_text(&mut ws).await, "4still here");
        assert_held(&mut pending, Duration::from_millis(300)).await;
        // Descriptors free up: the waiting connection is accepted and served.
        drop(filler);
        let r = finish_request(pending, "GET").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().starts_with("0{"), "{}", r.text());
        ws_send_text(&mut ws, "4after").await;
        assert_eq!(ws_recv_text(&mut ws).await, "4after");
        println!("child: done");
    });
}
