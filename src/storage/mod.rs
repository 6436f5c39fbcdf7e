//! The object store and the only place that names object keys.
//!
//! `Bucket` wraps an `Arc<dyn ObjectStore>` (a local directory by default,
//! any S3-compatible bucket with `s3://bucket/prefix`, in-memory for unit
//! tests) with a key prefix and the layout of DESIGN section 6. Data objects
//! are written create-only: a PUT never replaces an object, so two writers
//! can never overwrite each other's data. `Bucket::check` verifies at start
//! that the bucket exists, the credentials work and create-only writes are
//! enforced; `Bucket::create` makes a missing bucket (`--create-bucket`).

mod aws_profile;
mod local_dir;
mod metered;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::{Method, Signer};
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};
use uuid::Uuid;

use crate::error::{Error, Result};
use metered::MeteredStore;

/// An object store plus the key layout Silt uses inside it.
#[derive(Clone, Debug)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// The directory, when the bucket is a local one.
    dir: Option<PathBuf>,
    /// The bucket (or directory) name, for messages.
    name: String,
    /// The bare S3 client, for bucket administration; `None` off S3.
    s3: Option<S3Admin>,
}

/// What creating an S3 bucket needs beyond the object API.
#[derive(Clone, Debug)]
struct S3Admin {
    client: AmazonS3,
    region: String,
    /// A custom endpoint (LocalStack, MinIO), when one is set.
    endpoint: Option<String>,
}

/// Names an export file: the one of a topic's partition that starts at
/// offset `start`. The topic's id (its first 8 hex digits) is in the name,
/// so a topic deleted and created again never takes over the files of
/// the one before.
#[derive(Debug, Clone, Copy)]
pub struct ExportKey<'a> {
    pub topic: &'a str,
    pub topic_id: Uuid,
    pub partition: i32,
    pub start: i64,
}

/// An export file as the bucket lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportObject {
    /// The offset it starts at.
    pub start: i64,
    pub size: u64,
    /// When it was written (ms since the epoch).
    pub written_ms: i64,
}

/// Why the object store cannot be used, named so the operator can act.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    #[error("object store URL '{0}': expected file:///DIR or s3://BUCKET[/PREFIX]")]
    BadUrl(String),
    #[error("bucket '{0}' does not exist: create it, or start with --create-bucket")]
    NoSuchBucket(String),
    #[error(
        "access to bucket '{bucket}' was refused ({reason}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION, or AWS_PROFILE"
    )]
    AccessDenied { bucket: String, reason: String },
    #[error(
        "bucket '{0}' does not enforce create-only writes (If-None-Match): data objects could be overwritten"
    )]
    NoConditionalWrites(String),
    #[error("bucket '{bucket}' cannot be reached: {reason}")]
    Unreachable { bucket: String, reason: String },
    #[error("cannot create bucket '{bucket}': {reason}")]
    CreateFailed { bucket: String, reason: String },
}

impl Bucket {
    /// Opens the object store named by `url` (`file:///DIR`,
    /// `s3://BUCKET/PREFIX`), or `default_dir` when there is none. S3
    /// settings (credentials, region, endpoint) come from the standard
    /// `AWS_*` environment variables, then the AWS profile files, then web
    /// identity, container or instance credentials; plain HTTP is allowed
    /// for an `http://` endpoint.
    pub fn open(url: Option<&str>, default_dir: &Path) -> Result<Bucket> {
        let Some(url) = url else {
            return Bucket::local(default_dir);
        };
        let bad = || Error::InvalidConfig(BucketError::BadUrl(url.to_string()).to_string());
        if let Some(dir) = url.strip_prefix("file://") {
            let dir = PathBuf::from(dir);
            if !dir.is_absolute() {
                return Err(bad());
            }
            return Bucket::local(&dir);
        }
        let rest = url.strip_prefix("s3://").ok_or_else(bad)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad());
        }
        let mut builder = AmazonS3Builder::from_env();
        let profile =
            aws_profile::settings(|name| std::env::var(name).ok()).map_err(Error::InvalidConfig)?;
        for (key, value) in profile {
            if builder.get_config_value(&key).is_none() {
                builder = builder.with_config(key, value);
            }
        }
        let endpoint = builder
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .unwrap_or_default();
        let options = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(60))
            .with_allow_http(endpoint.starts_with("http://"));
        // Transient failures (timeouts, 5xx, 503 SlowDown) are retried with
        // jittered exponential backoff; what still fails is retried by the
        // uploader at its next flush.
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 8,
            retry_timeout: Duration::from_secs(30),
        };
        let mut builder = builder
            .with_bucket_name(bucket)
            .with_client_options(options)
            .with_retry(retry);
        // Over TLS the payload's integrity is TLS's: hashing every object
        // into the signature (SigV4's default) would only cost CPU (a fifth
        // of the broker's on the object path). Plain HTTP keeps the signed
        // hash. AWS_UNSIGNED_PAYLOAD decides when set.
        if !endpoint.starts_with("http://") && std::env::var_os("AWS_UNSIGNED_PAYLOAD").is_none() {
            builder = builder.with_unsigned_payload(true);
        }
        let region = builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .unwrap_or_else(|| "us-east-1".into());
        let client = builder.build()?;
        Ok(Bucket {
            store: Arc::new(MeteredStore::new(Arc::new(client.clone()))),
            prefix: ObjectPath::from(prefix),
            dir: None,
            name: bucket.to_string(),
            s3: Some(S3Admin {
                client,
                region,
                endpoint: (!endpoint.is_empty()).then_some(endpoint),
            }),
        })
    }

    /// Creates the bucket unless it exists (for LocalStack and MinIO; on AWS
    /// buckets are usually provisioned with Terraform). Servers answer an
    /// existing bucket of ours with BucketAlreadyOwnedByYou or, some of
    /// them, BucketAlreadyExists; either way [`Bucket::check`] then decides
    /// whether these credentials may use it.
    /// A local directory is always created; this is a no-op there.
    /// `object_store` has no bucket API, so this sends S3's CreateBucket
    /// through a URL presigned with the store's own credentials.
    pub async fn create(&self) -> std::result::Result<(), BucketError> {
        let Some(S3Admin { client, region, .. }) = &self.s3 else {
            return Ok(());
        };
        let failed = |reason: String| BucketError::CreateFailed {
            bucket: self.name.clone(),
            reason,
        };
        let url = client
            .signed_url(Method::PUT, &ObjectPath::default(), Duration::from_secs(60))
            .await
            .map_err(|e| failed(e.to_string()))?;
        // Outside us-east-1, S3 wants the region named in the body.
        let body = if region == "us-east-1" {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
            )
        };
        let response = reqwest::Client::new()
            .put(url)
            .body(body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| BucketError::Unreachable {
                bucket: self.name.clone(),
                reason: e.to_string(),
            })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let exists = [
            "<Code>BucketAlreadyOwnedByYou</Code>",
            "<Code>BucketAlreadyExists</Code>",
        ]
        .iter()
        .any(|code| text.contains(code));
        if status.is_success() || exists {
            tracing::info!(bucket = %self.name, "bucket ready");
            return Ok(());
        }
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map_or(status.to_string(), |(code, _)| code.to_string());
        Err(failed(code))
    }

    /// Checks that the bucket exists, the credentials work and create-only
    /// writes are enforced, by writing a probe object twice.
    pub async fn check(&self) -> std::result::Result<(), BucketError> {
        let probe = self
            .prefix
            .clone()
            .join("probe")
            .join(format!("{}", Uuid::now_v7().simple()));
        let create = || PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let classify = |e: object_store::Error| match e {
            object_store::Error::NotFound { .. } => BucketError::NoSuchBucket(self.name.clone()),
            object_store::Error::PermissionDenied { source, .. }
            | object_store::Error::Unauthenticated { source, .. } => BucketError::AccessDenied {
                bucket: self.name.clone(),
                reason: source.to_string(),
            },
            other => BucketError::Unreachable {
                bucket: self.name.clone(),
                reason: other.to_string(),
            },
        };
        let payload = || PutPayload::from_static(b"silt probe");
        let checked = async {
            self.store
                .put_opts(&probe, payload(), create())
                .await
                .map_err(classify)?;
            match self.store.put_opts(&probe, payload(), create()).await {
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Ok(_) => return Err(BucketError::NoConditionalWrites(self.name.clone())),
                Err(e) => return Err(classify(e)),
            }
            self.store.delete(&probe).await.map_err(classify)
        };
        tokio::time::timeout(Duration::from_secs(60), checked)
            .await
            .unwrap_or_else(|_| {
                Err(BucketError::Unreachable {
                    bucket: self.name.clone(),
                    reason: "no answer within 60 s".into(),
                })
            })
    }

    /// A bucket in a local directory; writes are fsynced before they return.
    pub fn local(dir: &Path) -> Result<Bucket> {
        let data = dir.join("data");
        if !data.is_dir() {
            std::fs::create_dir_all(&data)?;
            std::fs::File::open(dir)?.sync_all()?;
        }
        let store = LocalFileSystem::new_with_prefix(dir)?.with_fsync(true);
        Ok(Bucket {
            store: Arc::new(MeteredStore::new(Arc::new(store))),
            prefix: ObjectPath::default(),
            dir: Some(dir.to_path_buf()),
            name: dir.display().to_string(),
            s3: None,
        })
    }

    /// A bucket held in memory, for unit tests.
    #[cfg(test)]
    pub(crate) fn in_memory() -> Bucket {
        Bucket::over(Arc::new(object_store::memory::InMemory::new()))
    }

    /// A bucket over any store (a test double), for unit tests.
    #[cfg(test)]
    pub(crate) fn over(store: Arc<dyn ObjectStore>) -> Bucket {
        Bucket {
            store,
            prefix: ObjectPath::default(),
            dir: None,
            name: "memory".into(),
            s3: None,
        }
    }

    /// Whether the objects live on this machine's disk.
    pub fn is_local(&self) -> bool {
        self.dir.is_some()
    }

    /// `<prefix>/data/<id>.silt`
    fn data_path(&self, id: Uuid) -> ObjectPath {
        self.prefix
            .clone()
            .join("data")
            .join(format!("{}.silt", id.simple()))
    }

    /// Writes a new data object; fails if the key already exists.
    pub async fn put_data_object(&self, id: Uuid, bytes: Bytes) -> Result<()> {
        let location = self.data_path(id);
        let Some(dir) = &self.dir else {
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            let payload = PutPayload::from_bytes(bytes);
            self.store.put_opts(&location, payload, options).await?;
            return Ok(());
        };
        // In a local directory, written and synced in steps (see local_dir).
        let path = dir.join(location.as_ref());
        let started = Instant::now();
        let size = bytes.len() as u64;
        let written = tokio::task::spawn_blocking(move || local_dir::write_new(&path, &bytes))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: source.into(),
                },
                _ => object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: source.into(),
                },
            });
        metered::record_put(started, size, &written);
        Ok(written?)
    }

    /// Makes the file at `file` (a sealed WAL segment) the data object
    /// `id`: in a local directory a hard link (the bytes are not written
    /// again; a copy when the directory is on another file system), else
    /// a create-only PUT of `chunks` (the file's bytes; read from the file
    /// when empty). An object already there under `id` counts as written:
    /// it is this file, published before.
    pub async fn put_data_file(&self, id: Uuid, file: &Path, chunks: Vec<Bytes>) -> Result<()> {
        let location = self.data_path(id);
        let started = Instant::now();
        let Some(dir) = &self.dir else {
            let chunks = if chunks.is_empty() {
                vec![Bytes::from(tokio::fs::read(file).await?)]
            } else {
                chunks
            };
            let options = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            let payload: PutPayload = chunks.into_iter().collect();
            return match self.store.put_opts(&location, payload, options).await {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        let (source, target) = (file.to_path_buf(), dir.join(location.as_ref()));
        let linked = tokio::task::spawn_blocking(move || local_dir::link_new(&source, &target))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let size = tokio::fs::metadata(file).await.map_or(0, |m| m.len());
        let linked = linked.map_err(|source| object_store::Error::Generic {
            store: "LocalFileSystem",
            source: source.into(),
        });
        metered::record_put(started, size, &linked);
        Ok(linked?)
    }

    /// Every data object's id.
    pub async fn list_data_objects(&self) -> Result<Vec<Uuid>> {
        use futures::TryStreamExt;
        let prefix = self.prefix.clone().join("data");
        let objects: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&prefix)).try_collect().await?;
        Ok(objects
            .iter()
            .filter_map(|o| {
                let name = o.location.filename()?;
                Uuid::try_parse(name.strip_suffix(".silt")?).ok()
            })
            .collect())
    }

    /// Deletes data objects (only once nothing refers to them), in bulk
    /// requests where the store has them (S3 DeleteObjects, up to 1,000
    /// keys each). An object already gone counts as deleted.
    pub async fn delete_data_objects(&self, ids: &[Uuid]) -> Result<()> {
        use futures::StreamExt;
        let paths: Vec<object_store::Result<ObjectPath>> =
            ids.iter().map(|id| Ok(self.data_path(*id))).collect();
        let mut results = self
            .store
            .delete_stream(futures::stream::iter(paths).boxed());
        while let Some(result) = results.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reads a byte range of a data object.
    pub async fn read_data_range(&self, id: Uuid, range: Range<u64>) -> Result<Bytes> {
        Ok(self.store.get_range(&self.data_path(id), range).await?)
    }

    /// Reads several byte ranges of a data object; ranges less than 1 MiB
    /// apart are coalesced into one request.
    pub async fn read_data_ranges(&self, id: Uuid, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        Ok(self.store.get_ranges(&self.data_path(id), ranges).await?)
    }

    /// `<prefix>/export/<topic>`: a topic's export, an Iceberg table's
    /// location.
    fn export_root(&self, topic: &str) -> ObjectPath {
        self.prefix.clone().join("export").join(topic)
    }

    /// `<prefix>/export/<topic>/partition=<p>`: hive-style partition
    /// folders.
    fn export_folder(&self, topic: &str, partition: i32) -> ObjectPath {
        self.export_root(topic)
            .join(format!("partition={partition}"))
    }

    /// `<folder>/<start>-<id>.parquet`: files in offset order.
    fn export_path(&self, file: &ExportKey) -> ObjectPath {
        self.export_folder(file.topic, file.partition).join(format!(
            "{:020}{}",
            file.start,
            export_suffix(file.topic_id)
        ))
    }

    /// `<prefix>/export/<topic>/metadata/<name>`: an Iceberg table's
    /// metadata files, manifest lists and manifests.
    fn table_path(&self, topic: &str, name: &str) -> ObjectPath {
        self.export_root(topic).join("metadata").join(name)
    }

    /// The URI engines name an object by: `s3://BUCKET/KEY`,
    /// `file:///DIR/KEY`.
    fn uri(&self, path: &ObjectPath) -> String {
        match (&self.dir, &self.s3) {
            (Some(dir), _) => format!("file://{}/{path}", dir.display()),
            (None, Some(_)) => format!("s3://{}/{path}", self.name),
            (None, None) => format!("memory:///{path}"),
        }
    }

    /// The URI of a topic's export, where its Iceberg table lives.
    pub fn export_uri(&self, topic: &str) -> String {
        self.uri(&self.export_root(topic))
    }

    /// The URI of an export file.
    pub fn export_file_uri(&self, file: &ExportKey<'_>) -> String {
        self.uri(&self.export_path(file))
    }

    /// The S3 endpoint and region engines reach the bucket at, when set.
    pub fn s3_settings(&self) -> Vec<(&'static str, String)> {
        let Some(s3) = &self.s3 else {
            return Vec::new();
        };
        let mut settings = vec![("s3.region", s3.region.clone())];
        if let Some(endpoint) = &s3.endpoint {
            settings.push(("s3.endpoint", endpoint.clone()));
        }
        settings
    }

    /// Writes an export file, create-only: `false` if it exists already.
    pub async fn put_export_file(&self, file: &ExportKey<'_>, bytes: Bytes) -> Result<bool> {
        self.put_create(&self.export_path(file), bytes).await
    }

    /// Writes `bytes` to `location` unless something is there: `false` if
    /// it is.
    async fn put_create(&self, location: &ObjectPath, bytes: Bytes) -> Result<bool> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.store.put_opts(location, bytes.into(), options).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// An export file's bytes.
    pub async fn read_export_file(&self, file: &ExportKey<'_>) -> Result<Bytes> {
        let location = self.export_path(file);
        Ok(self.store.get(&location).await?.bytes().await?)
    }

    /// Deletes an export file (one never committed); gone already is fine.
    pub async fn delete_export_file(&self, file: &ExportKey<'_>) -> Result<()> {
        self.delete_if_there(&self.export_path(file)).await
    }

    async fn delete_if_there(&self, location: &ObjectPath) -> Result<()> {
        match self.store.delete(location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The export files of `file`'s topic and partition, in offset order.
    pub async fn list_export_files(&self, file: &ExportKey<'_>) -> Result<Vec<ExportObject>> {
        use futures::TryStreamExt;
        let folder = self.export_folder(file.topic, file.partition);
        let suffix = export_suffix(file.topic_id);
        let listed: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&folder)).try_collect().await?;
        let mut files: Vec<ExportObject> = listed
            .iter()
            .filter_map(|o| {
                let start = o.location.filename()?.strip_suffix(&suffix)?;
                Some(ExportObject {
                    start: start.parse().ok()?,
                    size: o.size,
                    written_ms: o.last_modified.timestamp_millis(),
                })
            })
            .collect();
        files.sort_unstable_by_key(|f| f.start);
        Ok(files)
    }

    /// Writes a file of `topic`'s Iceberg table; `create_only`: unless it
    /// exists (`false` then).
    pub async fn put_table_file(
        &self,
        topic: &str,
        name: &str,
        bytes: Bytes,
        create_only: bool,
    ) -> Result<bool> {
        let location = self.table_path(topic, name);
        if create_only {
            return self.put_create(&location, bytes).await;
        }
        self.store.put(&location, bytes.into()).await?;
        Ok(true)
    }

    /// A file of `topic`'s Iceberg table, `None` if there is none.
    pub async fn read_table_file(&self, topic: &str, name: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.table_path(topic, name)).await {
            Ok(got) => Ok(Some(got.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The names of the files of `topic`'s Iceberg table.
    pub async fn list_table_files(&self, topic: &str) -> Result<Vec<String>> {
        use futures::TryStreamExt;
        let folder = self.export_root(topic).join("metadata");
        let listed: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&folder)).try_collect().await?;
        Ok(listed
            .iter()
            .filter_map(|o| o.location.filename().map(str::to_string))
            .collect())
    }

    /// Deletes files of `topic`'s Iceberg table; gone already is fine.
    pub async fn delete_table_file(&self, topic: &str, name: &str) -> Result<()> {
        self.delete_if_there(&self.table_path(topic, name)).await
    }
}

/// The end of a topic's export file names: its id's first 8 hex digits,
/// so a topic deleted and created again never takes over the files of
/// the one before.
fn export_suffix(topic_id: Uuid) -> String {
    format!("-{}.parquet", &topic_id.simple().to_string()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_select_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("objects").display());
        let local = Bucket::open(Some(&url), dir.path()).unwrap();
        assert!(local.is_local());
        local.check().await.unwrap();
        assert!(Bucket::open(Some("file://relative"), dir.path()).is_err());
        assert!(Bucket::open(Some("gs://x"), dir.path()).is_err());
        assert!(Bucket::open(Some("s3://"), dir.path()).is_err());
        let s3 = Bucket::open(Some("s3://bucket/some/prefix"), dir.path()).unwrap();
        assert!(!s3.is_local());
        assert_eq!(
            s3.data_path(Uuid::nil()).as_ref(),
            format!("some/prefix/data/{}.silt", Uuid::nil().simple())
        );
    }

    #[tokio::test]
    async fn data_objects_are_create_only() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = Bucket::local(dir.path()).unwrap();
        let id = Uuid::now_v7();
        bucket
            .put_data_object(id, Bytes::from_static(b"hello world"))
            .await
            .unwrap();
        let again = bucket.put_data_object(id, Bytes::from_static(b"x")).await;
        assert!(again.is_err());
        let range = bucket.read_data_range(id, 6..11).await.unwrap();
        assert_eq!(&range[..], b"world");
    }
}
