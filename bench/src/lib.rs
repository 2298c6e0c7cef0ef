//! Benchmarks of gpm against tokio; see `benches/`.
