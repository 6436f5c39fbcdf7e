//! GetTelemetrySubscriptions (KIP-714): Silt collects no client metrics,
//! so every client gets an empty subscription (no metrics requested: it
//! pushes nothing) and asks again only after `PUSH_INTERVAL_MS`. A client
//! without an instance id gets one.

use kafka_protocol::messages::{
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse,
};
use uuid::Uuid;

/// How long a client waits before asking again.
const PUSH_INTERVAL_MS: i32 = 30 * 60 * 1000;

pub fn handle(request: GetTelemetrySubscriptionsRequest) -> GetTelemetrySubscriptionsResponse {
    let instance = if request.client_instance_id.is_nil() {
        Uuid::new_v4()
    } else {
        request.client_instance_id
    };
    GetTelemetrySubscriptionsResponse::default()
        .with_client_instance_id(instance)
        .with_push_interval_ms(PUSH_INTERVAL_MS)
        .with_requested_metrics(Vec::new())
}
