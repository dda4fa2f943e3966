//! Integration tests of the HTTP layer against a real server on a loopback port.

mod bad_input;
mod fixtures;
