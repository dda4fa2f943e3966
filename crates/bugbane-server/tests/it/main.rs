//! Integration tests of the HTTP layer against a real server on a loopback port.

mod alerts;
mod api;
mod bad_input;
mod compression;
mod dashboard;
mod endpoints;
mod fixtures;
mod insights;
mod performance;
