//! The ACL authorizer: the ACLs of the metadata store, cached and
//! reloaded when their version moves (polled, so a change made on any
//! broker applies on every broker within [`REFRESH_INTERVAL`]), and the
//! decision for one principal, host, operation and resource.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Principal;
use crate::acl::{AclSet, Operation, ResourceType, Verdict};
use crate::config::{AuthorizerKind, SecurityConfig};
use crate::error::Result;
use crate::meta::AclStore;

/// How often a broker checks whether the ACLs changed.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(500);

/// Decides whether a principal may do something.
pub struct Authorizer {
    enabled: bool,
    super_users: HashSet<String>,
    allow_if_no_acl: bool,
    /// The ACLs and the version they were read at.
    acls: RwLock<(Option<u64>, Arc<AclSet>)>,
}

impl Authorizer {
    /// The authorizer `config` asks for (no ACLs loaded yet).
    pub fn new(config: &SecurityConfig) -> Authorizer {
        Authorizer {
            enabled: config.authorizer == AuthorizerKind::Acl,
            super_users: config.super_users.iter().cloned().collect(),
            allow_if_no_acl: config.allow_everyone_if_no_acl_found,
            acls: RwLock::new((None, Arc::new(AclSet::default()))),
        }
    }

    /// Whether requests are checked at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn acls(&self) -> Arc<AclSet> {
        self.acls.read().expect("ACL cache poisoned").1.clone()
    }

    /// Whether `principal` connecting from `host` may perform `operation`
    /// on resource `name` of `resource_type`.
    pub fn allows(
        &self,
        principal: &Principal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.enabled {
            return true;
        }
        let principal = principal.to_string();
        if self.super_users.contains(&principal) {
            return true;
        }
        match self
            .acls()
            .verdict(&principal, host, operation, resource_type, name)
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
        principal: &Principal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let name = principal.to_string();
        !self.enabled
            || self.super_users.contains(&name)
            || self
                .acls()
                .allows_any(&name, host, operation, resource_type)
    }

    /// Reloads the ACLs from `store` if their version moved.
    pub async fn refresh(&self, store: &dyn AclStore) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let version = store.acl_version().await?;
        if self.acls.read().expect("ACL cache poisoned").0 == Some(version) {
            return Ok(());
        }
        let (version, acls) = store.acls().await?;
        let set = AclSet::new(acls);
        tracing::info!(acls = set.len(), version, "ACLs loaded");
        *self.acls.write().expect("ACL cache poisoned") = (Some(version), Arc::new(set));
        Ok(())
    }

    /// Keeps the ACLs current until `stop`.
    pub async fn run_refresh(self: Arc<Self>, store: Arc<dyn AclStore>, stop: CancellationToken) {
        if !self.enabled {
            return;
        }
        loop {
            if let Err(e) = self.refresh(&*store).await {
                tracing::warn!(error = %e, "cannot reload the ACLs");
            }
            tokio::select! {
                () = tokio::time::sleep(REFRESH_INTERVAL) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}
