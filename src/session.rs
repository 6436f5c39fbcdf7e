//! Who a request comes from: the client's address and the listener it
//! connected to (clients are told the addresses advertised on it).

use std::net::SocketAddr;
use std::sync::Arc;

/// One client connection's identity, handed to every request handler.
#[derive(Debug, Clone)]
pub struct Session {
    pub peer: SocketAddr,
    /// The name of the listener the client connected to.
    pub listener: Arc<str>,
}
