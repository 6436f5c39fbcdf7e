//! Authentication: who a client is (its [`Principal`]) and how it proves
//! it (SASL's PLAIN and SCRAM mechanisms).

pub mod authorizer;
pub mod certificate;
pub mod oauth;
pub mod sasl;
pub mod scram;

use std::fmt;

/// An authenticated identity, written as Kafka writes it (`User:alice`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    /// The principal type (`User`).
    pub kind: String,
    pub name: String,
}

impl Principal {
    /// `User:NAME`.
    pub fn user(name: &str) -> Principal {
        Principal {
            kind: "User".into(),
            name: name.into(),
        }
    }

    /// The principal of a connection that did not authenticate
    /// (`User:ANONYMOUS`, as in Kafka).
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}
