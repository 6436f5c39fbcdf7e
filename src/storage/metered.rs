//! An `ObjectStore` decorator that counts requests by kind and outcome,
//! times them and counts bytes; every method forwards to the inner store.
//!
//! Metrics: `silt_object_store_requests_total{kind,outcome}`,
//! `silt_object_store_request_seconds{kind}`,
//! `silt_object_store_bytes_total{direction}` (`out`: PUT, `in`: GET).

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// Wraps a store with request metrics.
#[derive(Debug)]
pub struct MeteredStore {
    inner: Arc<dyn ObjectStore>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        MeteredStore { inner }
    }
}

impl fmt::Display for MeteredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Metered({})", self.inner)
    }
}

/// Records one finished request of `kind`.
fn record<T>(kind: &'static str, started: Instant, result: &Result<T>) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(object_store::Error::NotFound { .. }) => "not_found",
        Err(object_store::Error::AlreadyExists { .. }) => "already_exists",
        Err(object_store::Error::Precondition { .. }) => "precondition",
        Err(_) => "error",
    };
    metrics::counter!("silt_object_store_requests_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("silt_object_store_request_seconds", "kind" => kind)
        .record(started.elapsed().as_secs_f64());
}

/// Records one finished PUT of `size` bytes (also for writes that bypass
/// the store, such as data objects in a local directory).
pub(super) fn record_put<T>(started: Instant, size: u64, result: &Result<T>) {
    record("put", started, result);
    if result.is_ok() {
        bytes("out", size);
    }
}

fn bytes(direction: &'static str, n: u64) {
    metrics::counter!("silt_object_store_bytes_total", "direction" => direction).increment(n);
}

#[async_trait]
impl ObjectStore for MeteredStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let started = Instant::now();
        let size = payload.content_length() as u64;
        let result = self.inner.put_opts(location, payload, opts).await;
        record_put(started, size, &result);
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let started = Instant::now();
        let result = self.inner.put_multipart_opts(location, opts).await;
        record("put_multipart", started, &result);
        result
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let started = Instant::now();
        let result = self.inner.get_opts(location, options).await;
        record("get", started, &result);
        if let Ok(got) = &result {
            bytes("in", got.range.end - got.range.start);
        }
        result
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let started = Instant::now();
        let result = self.inner.get_ranges(location, ranges).await;
        record("get_ranges", started, &result);
        if let Ok(parts) = &result {
            bytes("in", parts.iter().map(|b| b.len() as u64).sum());
        }
        result
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        metrics::counter!("silt_object_store_requests_total", "kind" => "delete", "outcome" => "sent").increment(1);
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        metrics::counter!("silt_object_store_requests_total", "kind" => "list", "outcome" => "sent").increment(1);
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        metrics::counter!("silt_object_store_requests_total", "kind" => "list", "outcome" => "sent").increment(1);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let started = Instant::now();
        let result = self.inner.list_with_delimiter(prefix).await;
        record("list", started, &result);
        result
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.copy_opts(from, to, options).await;
        record("copy", started, &result);
        result
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.rename_opts(from, to, options).await;
        record("rename", started, &result);
        result
    }
}
