//! Helpers shared by the window tests.
pub mod xvfb;
