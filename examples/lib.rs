//! Runnable examples of the `socketio` crates; see `examples/` and the
//! README there. This library is empty.
