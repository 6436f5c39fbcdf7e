//! `silt acl create|list|delete`: ACLs in Kafka's vocabulary, through
//! CreateAcls, DescribeAcls and DeleteAcls (as `kafka-acls.sh --add`,
//! `--list` and `--remove`).

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use silt::acl::{Acl, Operation, PatternType, Permission, ResourceType};

use super::{Cluster, check};

/// What a `list` or `delete` selects; `None` matches anything.
pub struct Selection {
    pub resource: Option<(ResourceType, String)>,
    /// `None`: any pattern; `Some(None)`: every pattern matching the
    /// resource name; `Some(Some(p))`: exactly `p`.
    pub pattern: Option<Option<PatternType>>,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// `$filter` (a DescribeAclsRequest or a DeleteAclsFilter: the same
/// fields) set to what `$selection` selects.
macro_rules! select {
    ($filter:expr, $selection:expr) => {{
        let s: &Selection = $selection;
        let (resource_type, name, pattern, operation, permission) = codes(s);
        $filter
            .with_resource_type_filter(resource_type)
            .with_resource_name_filter(name)
            .with_pattern_type_filter(pattern)
            .with_principal_filter(s.principal.as_deref().map(text))
            .with_host_filter(s.host.as_deref().map(text))
            .with_operation(operation)
            .with_permission_type(permission)
    }};
}

/// Kafka's filter codes of `selection` (1: any, 2: match).
fn codes(s: &Selection) -> (i8, Option<StrBytes>, i8, i8, i8) {
    let (resource_type, name) = match &s.resource {
        Some((t, name)) => (t.code(), Some(text(name))),
        None => (1, None),
    };
    let pattern = match s.pattern {
        None => 1,
        Some(None) => 2,
        Some(Some(p)) => p.code(),
    };
    (
        resource_type,
        name,
        pattern,
        s.operation.map_or(1, Operation::code),
        s.permission.map_or(1, Permission::code),
    )
}

/// Creates `acls`.
pub async fn create(cluster: &mut Cluster, acls: &[Acl]) -> anyhow::Result<()> {
    let creations = acls
        .iter()
        .map(|a| {
            AclCreation::default()
                .with_resource_type(a.resource_type.code())
                .with_resource_name(text(&a.resource_name))
                .with_resource_pattern_type(a.pattern_type.code())
                .with_principal(text(&a.principal))
                .with_host(text(&a.host))
                .with_operation(a.operation.code())
                .with_permission_type(a.permission.code())
        })
        .collect();
    let request = CreateAclsRequest::default().with_creations(creations);
    let response = cluster.any().call(request, 3).await?;
    for (acl, result) in acls.iter().zip(&response.results) {
        let message = result.error_message.as_deref().unwrap_or_default();
        check(
            result.error_code,
            &format!("cannot create {acl}: {message}"),
        )?;
        println!("Created: {acl}");
    }
    Ok(())
}

/// Prints the ACLs `selection` selects.
pub async fn list(cluster: &mut Cluster, selection: &Selection) -> anyhow::Result<()> {
    let request = select!(DescribeAclsRequest::default(), selection);
    let response = cluster.any().call(request, 3).await?;
    let message = response.error_message.as_deref().unwrap_or_default();
    check(response.error_code, &format!("cannot list ACLs: {message}"))?;
    println!("ResourceType\tName\tPatternType\tPrincipal\tHost\tOperation\tPermission");
    for r in &response.resources {
        for a in &r.acls {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                name_of(r.resource_type, ResourceType::from_code),
                r.resource_name,
                name_of(r.pattern_type, PatternType::from_code),
                a.principal,
                a.host,
                name_of(a.operation, Operation::from_code),
                name_of(a.permission_type, Permission::from_code),
            );
        }
    }
    Ok(())
}

/// Deletes the ACLs `selection` selects; prints each one deleted.
pub async fn delete(cluster: &mut Cluster, selection: &Selection) -> anyhow::Result<()> {
    let filter = select!(DeleteAclsFilter::default(), selection);
    let request = DeleteAclsRequest::default().with_filters(vec![filter]);
    let response = cluster.any().call(request, 3).await?;
    for result in &response.filter_results {
        let message = result.error_message.as_deref().unwrap_or_default();
        check(result.error_code, &format!("cannot delete ACLs: {message}"))?;
        for a in &result.matching_acls {
            println!(
                "Deleted: {} {}:{} ({}) {} {} from {}",
                name_of(a.permission_type, Permission::from_code),
                name_of(a.resource_type, ResourceType::from_code),
                a.resource_name,
                name_of(a.pattern_type, PatternType::from_code),
                a.principal,
                name_of(a.operation, Operation::from_code),
                a.host
            );
        }
    }
    Ok(())
}

/// The name of a code, or the code if unknown.
fn name_of<T: std::fmt::Display>(code: i8, parse: fn(i8) -> Option<T>) -> String {
    parse(code).map_or_else(|| code.to_string(), |v| v.to_string())
}
