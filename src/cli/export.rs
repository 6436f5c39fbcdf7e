//! `silt export status`: the Parquet export of each partition, as a
//! broker's admin port reports it (`GET /api/v1/export`).

use anyhow::{Context, bail};
use silt::broker::PartitionExport;

/// What `/api/v1/export` answers.
#[derive(serde::Deserialize)]
struct ExportStatus {
    partitions: Vec<PartitionExport>,
}

/// Prints the export status of `topic` (or of every exported topic) from
/// the admin port at `admin` (HOST:PORT or a URL).
pub async fn status(admin: &str, token: Option<&str>, topic: Option<&str>) -> anyhow::Result<()> {
    let base = if admin.contains("://") {
        admin.trim_end_matches('/').to_string()
    } else {
        format!("http://{admin}")
    };
    let url = match topic {
        Some(topic) => format!("{base}/api/v1/export/{topic}"),
        None => format!("{base}/api/v1/export"),
    };
    let mut request = reqwest::Client::new().get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the admin port at {base}"))?;
    let code = response.status();
    let body = response.text().await.context("reading the answer")?;
    if !code.is_success() {
        let why = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or(body);
        bail!("{url}: {code}: {why}");
    }
    let status: ExportStatus =
        serde_json::from_str(&body).with_context(|| format!("{url}: an unexpected answer"))?;
    println!(
        "{:<24} {:>9} {:>12} {:>12} {:>10} {:>8} {:>6} {:>12} {:>14}  LAST ERROR",
        "TOPIC", "PARTITION", "EXPORTED", "END", "LAG", "LAG S", "FILES", "ROWS", "BYTES"
    );
    for p in status.partitions {
        println!(
            "{:<24} {:>9} {:>12} {:>12} {:>10} {:>8.1} {:>6} {:>12} {:>14}  {}",
            p.topic,
            p.partition,
            p.exported_offset,
            p.end_offset,
            p.lag_records,
            p.lag_seconds,
            p.files,
            p.rows,
            p.bytes,
            p.last_error.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}
