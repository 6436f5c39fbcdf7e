//! DescribeClientQuotas and AlterClientQuotas: produce and fetch byte
//! rates and request percentages per user and/or client id, with
//! defaults, as `kafka-configs.sh --entity-type users|clients` and
//! `silt quota` manage them.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, alter_client_quotas_response,
};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::broker::Broker;
use crate::quota::{ClientQuota, KEYS, QuotaEntity, QuotaName};

const USER: &str = "user";
const CLIENT_ID: &str = "client-id";

/// An entity from a request's (type, name or null for the default) pairs.
fn entity(parts: &[(&str, Option<&str>)]) -> Result<QuotaEntity, String> {
    let mut entity = QuotaEntity {
        user: None,
        client_id: None,
    };
    for &(kind, name) in parts {
        let name = name.map_or(QuotaName::Default, |n| QuotaName::Named(n.to_string()));
        let side = match kind {
            USER => &mut entity.user,
            CLIENT_ID => &mut entity.client_id,
            other => return Err(format!("entity type '{other}' is not user or client-id")),
        };
        if side.replace(name).is_some() {
            return Err(format!("entity type '{kind}' is given twice"));
        }
    }
    if entity.user.is_none() && entity.client_id.is_none() {
        return Err("the entity is empty".into());
    }
    Ok(entity)
}

/// The (type, name) pairs of an entity, for responses.
fn parts(entity: &QuotaEntity) -> Vec<(&'static str, Option<StrBytes>)> {
    let name = |n: &QuotaName| match n {
        QuotaName::Named(n) => Some(str_bytes(n)),
        QuotaName::Default => None,
    };
    [(USER, &entity.user), (CLIENT_ID, &entity.client_id)]
        .into_iter()
        .filter_map(|(kind, side)| Some((kind, name(side.as_ref()?))))
        .collect()
}

pub async fn describe(
    broker: &Broker,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let failed = |code: ResponseError, message: String| {
        DescribeClientQuotasResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(&message)))
    };
    // Each component: the entity type, and which names match (None: any
    // name given; Some(None): the default; Some(Some(n)): exactly n).
    let mut filters: Vec<(&str, Option<Option<String>>)> = Vec::new();
    for c in &request.components {
        let kind = match c.entity_type.as_str() {
            USER => USER,
            CLIENT_ID => CLIENT_ID,
            other => {
                return failed(
                    ResponseError::InvalidRequest,
                    format!("entity type '{other}' is not user or client-id"),
                );
            }
        };
        let matching = match (c.match_type, &c._match) {
            (0, Some(name)) => Some(Some(name.to_string())),
            (1, _) => Some(None),
            (2, _) => None,
            _ => {
                return failed(
                    ResponseError::InvalidRequest,
                    format!(
                        "match type {} is not 0 (exact), 1 (default) or 2 (any)",
                        c.match_type
                    ),
                );
            }
        };
        filters.push((kind, matching));
    }
    let quotas = match broker.quota_store().quotas().await {
        Ok((_, quotas)) => quotas,
        Err(e) => return failed(e.response_error(), e.to_string()),
    };
    let side = |e: &QuotaEntity, kind: &str| match kind {
        USER => e.user.clone(),
        _ => e.client_id.clone(),
    };
    let entries = quotas
        .into_iter()
        .filter(|q| {
            let selected =
                filters
                    .iter()
                    .all(|(kind, matching)| match (side(&q.entity, kind), matching) {
                        (None, _) => false,
                        (Some(_), None) => true,
                        (Some(QuotaName::Default), Some(None)) => true,
                        (Some(QuotaName::Named(n)), Some(Some(m))) => &n == m,
                        _ => false,
                    });
            let kinds = parts(&q.entity).len();
            selected && (!request.strict || kinds == filters.len())
        })
        .map(|q| {
            EntryData::default()
                .with_entity(
                    parts(&q.entity)
                        .into_iter()
                        .map(|(kind, name)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_static_str(kind))
                                .with_entity_name(name)
                        })
                        .collect(),
                )
                .with_values(
                    q.values
                        .iter()
                        .map(|(k, v)| ValueData::default().with_key(str_bytes(k)).with_value(*v))
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

pub async fn alter(
    broker: &Broker,
    request: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let current: BTreeMap<QuotaEntity, BTreeMap<String, f64>> =
        match broker.quota_store().quotas().await {
            Ok((_, quotas)) => quotas.into_iter().map(|q| (q.entity, q.values)).collect(),
            Err(e) => {
                let code = e.response_error().code();
                let message = Some(str_bytes(&e.to_string()));
                let entries = request
                    .entries
                    .iter()
                    .map(|entry| {
                        alter_client_quotas_response::EntryData::default()
                            .with_error_code(code)
                            .with_error_message(message.clone())
                            .with_entity(response_entity(&entry.entity))
                    })
                    .collect();
                return AlterClientQuotasResponse::default().with_entries(entries);
            }
        };
    let mut entries = Vec::new();
    for entry in &request.entries {
        let named: Vec<(&str, Option<&str>)> = entry
            .entity
            .iter()
            .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref()))
            .collect();
        let outcome = match entity(&named) {
            Err(message) => Err((ResponseError::InvalidRequest, message)),
            Ok(entity) => {
                let mut values = current.get(&entity).cloned().unwrap_or_default();
                let mut bad = None;
                for op in &entry.ops {
                    let key = op.key.as_str();
                    if !KEYS.contains(&key) {
                        bad = Some(format!(
                            "unknown quota key '{key}' (one of {})",
                            KEYS.join(", ")
                        ));
                    } else if op.remove {
                        values.remove(key);
                    } else if !(op.value.is_finite() && op.value > 0.0) {
                        bad = Some(format!("{key} must be a positive number"));
                    } else {
                        values.insert(key.to_string(), op.value);
                    }
                }
                match bad {
                    Some(message) => Err((ResponseError::InvalidRequest, message)),
                    None if request.validate_only => Ok(()),
                    None => broker
                        .quota_store()
                        .put_quota(ClientQuota { entity, values })
                        .await
                        .map_err(|e| (e.response_error(), e.to_string())),
                }
            }
        };
        let result = alter_client_quotas_response::EntryData::default()
            .with_entity(response_entity(&entry.entity));
        entries.push(match outcome {
            Ok(()) => result,
            Err((code, message)) => result
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(&message))),
        });
    }
    if let Err(e) = broker.quotas.refresh(broker.quota_store()).await {
        tracing::warn!(error = %e, "cannot reload the client quotas");
    }
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// A request's entity, as the response names it.
pub(super) fn response_entity(
    entity: &[kafka_protocol::messages::alter_client_quotas_request::EntityData],
) -> Vec<alter_client_quotas_response::EntityData> {
    entity
        .iter()
        .map(|e| {
            alter_client_quotas_response::EntityData::default()
                .with_entity_type(e.entity_type.clone())
                .with_entity_name(e.entity_name.clone())
        })
        .collect()
}
