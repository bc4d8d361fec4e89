//! Cross-crate integration tests for palisade live in `tests/`; this library is empty.
