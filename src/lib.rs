//! Silt: a Kafka-protocol broker whose durable home is object storage.
//!
//! The life of a produce request, top to bottom:
//! [`server`] reads a frame → [`protocol`] decodes it → [`handlers`]
//! validates the batch → [`log`] assigns offsets in the partition's tail and,
//! in `local` durability, appends to the WAL; the response waits until the
//! batch is durable (WAL fsync, or upload + commit in `object` durability).
//! The uploader seals tails into one multi-partition object in [`storage`]
//! and commits its extents to [`meta`]. Fetch reads the tail, the section
//! cache, then the object store.
//!
//! [`broker`] ties these together; [`client`] is the small Kafka client the
//! console commands use.

pub mod acl;
pub mod admin;
pub mod broker;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod error;
pub mod export;
pub mod failpoint;
pub mod group;
pub mod handlers;
pub mod log;
pub mod meta;
pub mod protocol;
pub mod quota;
pub mod security;
pub mod server;
pub mod session;
pub mod storage;
pub mod txn;
