//! The JSON API under `/api/v1`, for scripts and the `silt` commands,
//! behind the admin port's access checks:
//! - `GET /api/v1/export`: the export status of every partition of the
//!   exported topics; `GET /api/v1/export/{topic}`: of one topic (404 with
//!   `{"error": ...}` if it does not exist or is not exported).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::broker::{Broker, PartitionExport};
use crate::error::{Error, Result};

/// The API's routes.
pub fn routes() -> Router<Arc<Broker>> {
    Router::new()
        .route("/api/v1/export", get(all_exports))
        .route("/api/v1/export/{topic}", get(topic_export))
}

/// What `/api/v1/export` answers.
#[derive(Serialize)]
struct ExportStatus {
    partitions: Vec<PartitionExport>,
}

async fn all_exports(State(broker): State<Arc<Broker>>) -> Response {
    export_response(broker.export_status(None).await)
}

async fn topic_export(State(broker): State<Arc<Broker>>, Path(topic): Path<String>) -> Response {
    export_response(broker.export_status(Some(&topic)).await)
}

fn export_response(status: Result<Vec<PartitionExport>>) -> Response {
    match status {
        Ok(partitions) => json(StatusCode::OK, &ExportStatus { partitions }),
        Err(Error::UnknownTopicOrPartition) => error(StatusCode::NOT_FOUND, "no such topic"),
        Err(Error::InvalidConfig(why)) => error(StatusCode::NOT_FOUND, &why),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

/// `body` as JSON with `status`.
pub(super) fn json(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_string(body) {
        Ok(text) => (status, [(CONTENT_TYPE, "application/json")], text).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// `{"error": why}` with `status`.
fn error(status: StatusCode, why: &str) -> Response {
    let body = serde_json::json!({ "error": why }).to_string();
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}
