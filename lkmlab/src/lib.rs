//! lkmlab: build a pinned kernel, build Rust modules against exactly its tree,
//! and test them in a VM.
