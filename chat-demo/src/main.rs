//! The chat demo (placeholder until the socketio crate lands).

fn main() {
    eprintln!("chat-demo: not built yet; see issue 4");
}
