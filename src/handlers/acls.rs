//! CreateAcls, DescribeAcls and DeleteAcls: the ACLs the authorizer
//! checks, as `kafka-acls.sh` and `silt acl` manage them. Without an
//! authorizer they answer SECURITY_DISABLED, as Kafka does.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};

use super::str_bytes;
use crate::acl::{Acl, AclFilter};
use crate::broker::Broker;
use crate::error::Error;

/// The filter of a DescribeAcls request or a DeleteAcls filter (the two
/// carry the same fields).
macro_rules! filter_of {
    ($f:expr) => {
        AclFilter::from_request(
            $f.resource_type_filter,
            $f.resource_name_filter.as_deref(),
            $f.pattern_type_filter,
            $f.principal_filter.as_deref(),
            $f.host_filter.as_deref(),
            $f.operation,
            $f.permission_type,
        )
    };
}

/// Why an ACL request cannot be served at all.
fn refusal(broker: &Broker) -> Option<(ResponseError, String)> {
    (!broker.authorizer.enabled()).then(|| {
        (
            ResponseError::SecurityDisabled,
            "no authorizer is configured (security.authorizer = \"acl\")".into(),
        )
    })
}

fn store_error(e: &Error) -> (ResponseError, String) {
    (e.response_error(), e.to_string())
}

/// Reloads this broker's copy of the ACLs after a change, so the change
/// applies here at once (other brokers poll).
async fn reload(broker: &Broker) {
    if let Err(e) = broker.authorizer.refresh(broker.acl_store()).await {
        tracing::warn!(error = %e, "cannot reload the ACLs");
    }
}

pub async fn create(broker: &Broker, request: CreateAclsRequest) -> CreateAclsResponse {
    let parsed: Vec<Result<Acl, (ResponseError, String)>> = request
        .creations
        .iter()
        .map(|c| {
            Acl::from_request(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
            .map_err(|e| (ResponseError::InvalidRequest, e.to_string()))
        })
        .collect();
    let valid: Vec<Acl> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let stored = match refusal(broker) {
        Some(refused) => Err(refused),
        None if valid.is_empty() => Ok(()),
        None => broker
            .acl_store()
            .create_acls(valid)
            .await
            .map_err(|e| store_error(&e)),
    };
    reload(broker).await;
    let results = parsed
        .into_iter()
        .map(|p| match p.and(stored.clone()) {
            Ok(()) => AclCreationResult::default(),
            Err((code, message)) => AclCreationResult::default()
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(&message))),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

pub async fn describe(broker: &Broker, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let failed = |(code, message): (ResponseError, String)| {
        DescribeAclsResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(&message)))
    };
    if let Some(refused) = refusal(broker) {
        return failed(refused);
    }
    let filter = match filter_of!(request) {
        Ok(filter) => filter,
        Err(e) => return failed((ResponseError::InvalidRequest, e.to_string())),
    };
    let acls = match broker.acl_store().acls().await {
        Ok((_, acls)) => acls,
        Err(e) => return failed(store_error(&e)),
    };
    let mut resources: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in acls.iter().filter(|acl| filter.matches(acl)) {
        let key = (
            acl.resource_type.code(),
            acl.resource_name.clone(),
            acl.pattern_type.code(),
        );
        resources.entry(key).or_default().push(
            AclDescription::default()
                .with_principal(str_bytes(&acl.principal))
                .with_host(str_bytes(&acl.host))
                .with_operation(acl.operation.code())
                .with_permission_type(acl.permission.code()),
        );
    }
    let resources = resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(&name))
                .with_pattern_type(pattern_type)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

pub async fn delete(broker: &Broker, request: DeleteAclsRequest) -> DeleteAclsResponse {
    let stored = match refusal(broker) {
        Some(refused) => Err(refused),
        None => broker
            .acl_store()
            .acls()
            .await
            .map(|(_, acls)| acls)
            .map_err(|e| store_error(&e)),
    };
    let failed = |(code, message): &(ResponseError, String)| {
        DeleteAclsFilterResult::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(message)))
    };
    let mut doomed = Vec::new();
    let mut results = Vec::new();
    for f in &request.filters {
        let filter = filter_of!(f).map_err(|e| (ResponseError::InvalidRequest, e.to_string()));
        let matching = match (&stored, filter) {
            (Err(e), _) => {
                results.push(Err(e.clone()));
                continue;
            }
            (_, Err(e)) => {
                results.push(Err(e));
                continue;
            }
            (Ok(stored), Ok(filter)) => stored
                .iter()
                .filter(|acl| filter.matches(acl))
                .cloned()
                .collect::<Vec<_>>(),
        };
        doomed.extend(matching.iter().cloned());
        results.push(Ok(matching));
    }
    let deleted = if doomed.is_empty() {
        Ok(())
    } else {
        broker
            .acl_store()
            .delete_acls(doomed)
            .await
            .map_err(|e| store_error(&e))
    };
    reload(broker).await;
    let filter_results = results
        .into_iter()
        .map(|r| match r.and_then(|m| deleted.clone().map(|()| m)) {
            Err(e) => failed(&e),
            Ok(matching) => DeleteAclsFilterResult::default().with_matching_acls(
                matching
                    .iter()
                    .map(|acl| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(acl.resource_type.code())
                            .with_resource_name(str_bytes(&acl.resource_name))
                            .with_pattern_type(acl.pattern_type.code())
                            .with_principal(str_bytes(&acl.principal))
                            .with_host(str_bytes(&acl.host))
                            .with_operation(acl.operation.code())
                            .with_permission_type(acl.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(filter_results)
}
