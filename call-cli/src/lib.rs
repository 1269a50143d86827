//! The `call` program as a library: command-line definitions and the wiring that turns them into
//! calls. The binary (`main.rs`) only parses arguments and reports errors; end-to-end tests drive
//! the same functions in-process.

pub mod call;
pub mod cli;
pub mod config;
pub mod demo;
pub mod engine;
pub mod ice_server;
pub mod id;
pub mod rooms;
pub mod terminal_text;
