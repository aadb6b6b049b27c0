//! Baton's conformance suite: black-box checks of the session contract (`shared/CONTRACT.md`)
//! against any running instance, over HTTP only.
#![forbid(unsafe_code)]

pub mod burst;
pub mod checks;
pub mod cookie;
pub mod curl;
pub mod discovery;
pub mod http;
pub mod jwt;
pub mod machine;
pub mod model;
pub mod probe;
pub mod property;
pub mod report;
pub mod runner;
