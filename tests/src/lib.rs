//! End-to-end tests of `call` on loopback live in `tests/tests/`.
