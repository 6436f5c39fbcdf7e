//! A read-only Iceberg REST catalog of the exported tables
//! (`silt.export.format = iceberg`), so engines attach by URL: catalog URI
//! `http://ADMIN_ADDRESS/iceberg`, one namespace (`silt`), a table per
//! topic. Served, from the REST catalog specification:
//! - `GET /iceberg/v1/config`
//! - `GET /iceberg/v1/namespaces`, `GET /iceberg/v1/namespaces/{ns}`
//! - `GET /iceberg/v1/namespaces/{ns}/tables`
//! - `GET /iceberg/v1/namespaces/{ns}/tables/{table}` (load table: the
//!   metadata, its location, and the bucket's S3 endpoint and region;
//!   credentials are the engine's own)
//!
//! Errors are the specification's `{"error": {message, type, code}}`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::broker::Broker;
use crate::export::iceberg::NAMESPACE;

/// The catalog's routes.
pub fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/iceberg/v1/config", get(config))
        .route("/iceberg/v1/namespaces", get(namespaces))
        .route("/iceberg/v1/namespaces/{namespace}", get(namespace))
        .route("/iceberg/v1/namespaces/{namespace}/tables", get(tables))
        .route(
            "/iceberg/v1/namespaces/{namespace}/tables/{table}",
            get(load_table),
        )
}

async fn config() -> Response {
    ok(json!({"defaults": {}, "overrides": {}}))
}

async fn namespaces() -> Response {
    ok(json!({"namespaces": [[NAMESPACE]]}))
}

async fn namespace(Path(namespace): Path<String>) -> Response {
    if namespace != NAMESPACE {
        return no_namespace(&namespace);
    }
    ok(json!({"namespace": [NAMESPACE], "properties": {}}))
}

async fn tables(State(broker): State<Arc<Broker>>, Path(namespace): Path<String>) -> Response {
    if namespace != NAMESPACE {
        return no_namespace(&namespace);
    }
    let mut identifiers = Vec::new();
    for topic in broker.iceberg_topics() {
        match broker.iceberg_table(&topic).await {
            Ok(Some(_)) => identifiers.push(json!({"namespace": [NAMESPACE], "name": topic})),
            Ok(None) => {}
            Err(e) => return unavailable(&e.to_string()),
        }
    }
    ok(json!({"identifiers": identifiers}))
}

async fn load_table(
    State(broker): State<Arc<Broker>>,
    Path((namespace, table)): Path<(String, String)>,
) -> Response {
    if namespace != NAMESPACE {
        return no_namespace(&namespace);
    }
    if !broker.iceberg_topics().contains(&table) {
        return no_table(&table);
    }
    match broker.iceberg_table(&table).await {
        Ok(Some((_, metadata, location))) => {
            let config: Map<String, Value> = broker
                .table_io_settings()
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v)))
                .collect();
            ok(json!({
                "metadata-location": location,
                "metadata": metadata,
                "config": config,
            }))
        }
        Ok(None) => no_table(&table),
        Err(e) => unavailable(&e.to_string()),
    }
}

fn no_namespace(namespace: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NoSuchNamespaceException",
        &format!("namespace '{namespace}' does not exist; the only one is '{NAMESPACE}'"),
    )
}

fn no_table(table: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NoSuchTableException",
        &format!(
            "table '{NAMESPACE}.{table}' does not exist: no topic of that name is exported with silt.export.format=iceberg and committed yet"
        ),
    )
}

fn unavailable(why: &str) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableException",
        why,
    )
}

/// The REST specification's error body.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "code": status.as_u16()}});
    super::api::json(status, &body)
}

fn ok(body: Value) -> Response {
    super::api::json(StatusCode::OK, &body)
}
