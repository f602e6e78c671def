//! Socket.IO v5 server (work in progress).
