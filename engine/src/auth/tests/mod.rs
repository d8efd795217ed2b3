//! Tests of the whole verifier, against local keys and a local issuer only.

mod custom_jwt;
mod providers;
mod remote;
mod server;
mod support;
