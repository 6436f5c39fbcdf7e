//! `silt quota set|describe`: client quotas through AlterClientQuotas and
//! DescribeClientQuotas (as `kafka-configs.sh --entity-type users|clients`).

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};
use kafka_protocol::protocol::StrBytes;
use silt::quota::QuotaName;

use super::{Cluster, check};

/// The (type, name) pairs of an entity: `user`, `client-id`.
pub type Entity = Vec<(&'static str, QuotaName)>;

fn name(n: &QuotaName) -> Option<StrBytes> {
    match n {
        QuotaName::Named(n) => Some(StrBytes::from_string(n.clone())),
        QuotaName::Default => None,
    }
}

/// Sets quotas (`key`, value) and removes `delete` keys of `entity`.
pub async fn set(
    cluster: &mut Cluster,
    entity: &Entity,
    values: &[(&str, f64)],
    delete: &[String],
) -> anyhow::Result<()> {
    let ops = values
        .iter()
        .map(|(k, v)| {
            OpData::default()
                .with_key(StrBytes::from_string(k.to_string()))
                .with_value(*v)
        })
        .chain(delete.iter().map(|k| {
            OpData::default()
                .with_key(StrBytes::from_string(k.clone()))
                .with_remove(true)
        }))
        .collect();
    let entry = EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(kind, n)| {
                    EntityData::default()
                        .with_entity_type(StrBytes::from_static_str(kind))
                        .with_entity_name(name(n))
                })
                .collect(),
        )
        .with_ops(ops);
    let request = AlterClientQuotasRequest::default().with_entries(vec![entry]);
    let response = cluster.any().call(request, 1).await?;
    for e in &response.entries {
        let message = e.error_message.as_deref().unwrap_or_default();
        check(e.error_code, &format!("cannot set quotas: {message}"))?;
    }
    println!("Quotas of {} updated", describe_entity(entity));
    Ok(())
}

/// Prints the quotas of the entities matching `entity` (all if empty).
pub async fn describe(cluster: &mut Cluster, entity: &Entity) -> anyhow::Result<()> {
    let components = entity
        .iter()
        .map(|(kind, n)| {
            let c = ComponentData::default().with_entity_type(StrBytes::from_static_str(kind));
            match n {
                QuotaName::Named(n) => c
                    .with_match_type(0)
                    .with_match(Some(StrBytes::from_string(n.clone()))),
                QuotaName::Default => c.with_match_type(1),
            }
        })
        .collect();
    let request = DescribeClientQuotasRequest::default().with_components(components);
    let response = cluster.any().call(request, 1).await?;
    let message = response.error_message.as_deref().unwrap_or_default();
    check(
        response.error_code,
        &format!("cannot describe quotas: {message}"),
    )?;
    println!("Entity\tKey\tValue");
    for entry in response.entries.iter().flatten() {
        let entity: Vec<String> = entry
            .entity
            .iter()
            .map(|e| {
                let n = e
                    .entity_name
                    .as_deref()
                    .map_or("<default>".to_string(), |n| n.to_string());
                format!("{}={n}", e.entity_type)
            })
            .collect();
        for v in &entry.values {
            println!("{}\t{}\t{}", entity.join(","), v.key, v.value);
        }
    }
    Ok(())
}

fn describe_entity(entity: &Entity) -> String {
    let parts: Vec<String> = entity
        .iter()
        .map(|(kind, n)| match n {
            QuotaName::Named(n) => format!("{kind} '{n}'"),
            QuotaName::Default => format!("the default {kind}"),
        })
        .collect();
    parts.join(" and ")
}
