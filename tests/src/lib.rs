//! Integration tests for gpm live in `tests/`.
