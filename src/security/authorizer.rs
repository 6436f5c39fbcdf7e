//! The ACL authorizer: the ACLs of the metadata store, cached and
//! reloaded when their version moves (the broker polls, so a change made
//! on any broker applies on every broker within a second), and the
//! decision for one principal, host, operation and resource.

use std::collections::HashSet;

use crate::acl::{AclSet, Operation, ResourceType, Verdict};
use crate::config::{AuthorizerKind, SecurityConfig};
use crate::error::Result;
use crate::meta::AclStore;
use crate::meta::cache::Cached;

/// Decides whether a principal may do something.
pub struct Authorizer {
    enabled: bool,
    super_users: HashSet<String>,
    allow_if_no_acl: bool,
    acls: Cached<AclSet>,
}

impl Authorizer {
    /// The authorizer `config` asks for (no ACLs loaded yet).
    pub fn new(config: &SecurityConfig) -> Authorizer {
        Authorizer {
            enabled: config.authorizer == AuthorizerKind::Acl,
            super_users: config.super_users.iter().cloned().collect(),
            allow_if_no_acl: config.allow_everyone_if_no_acl_found,
            acls: Cached::default(),
        }
    }

    /// Whether requests are checked at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `principal` (`User:alice`) connecting from `host` may
    /// perform `operation` on resource `name` of `resource_type`.
    pub fn allows(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled || self.super_users.contains(principal) {
            return true;
        }
        match self
            .acls
            .get()
            .verdict(principal, host, operation, resource_type, name)
        {
            Verdict::Allowed => true,
            Verdict::Denied => false,
            Verdict::NoAcls => self.allow_if_no_acl,
        }
    }

    /// Whether `principal` from `host` may perform `operation` on some
    /// resource of `resource_type`.
    pub fn allows_any(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        !self.enabled
            || self.super_users.contains(principal)
            || self
                .acls
                .get()
                .allows_any(principal, host, operation, resource_type)
    }

    /// Reloads the ACLs from `store` if their version moved.
    pub async fn refresh(&self, store: &dyn AclStore) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let version = store.acl_version().await?;
        if self
            .acls
            .refresh(version, async {
                let (version, acls) = store.acls().await?;
                Ok((version, AclSet::new(acls)))
            })
            .await?
        {
            tracing::info!(acls = self.acls.get().len(), version, "ACLs loaded");
        }
        Ok(())
    }
}
