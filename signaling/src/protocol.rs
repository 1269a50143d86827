//! Client/server wire messages.
