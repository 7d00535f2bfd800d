//! lanyard: a userspace virtual switch for rootless containers.
//!
//! The library holds everything — down to a container's life (`container`)
//! and the daemon's (`daemon`); the `lanyard` binary is a thin CLI over it,
//! so tests, benches and fuzz targets drive the real code. Start at
//! `docs/ARCHITECTURE.md` for the path of a frame and which module owns
//! what.

pub mod bridge;
pub mod capture;
pub mod config;
pub mod container;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod dns;
pub mod frame;
pub mod gateway;
pub mod host;
pub mod inside;
pub mod ipam;
pub mod log;
pub mod metrics;
pub mod nat;
pub mod offload;
pub mod port;
pub mod publish;
pub mod ratelimit;
pub mod sandbox;
pub mod security;
pub mod slirp;
pub mod stats;
pub mod sys;
pub mod time;
pub mod wire;
