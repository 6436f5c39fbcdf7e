//! The metadata store of cluster mode, in etcd (v3 API; etcd 3.4 works).
//!
//! Keys live under a root prefix (`etcd://HOST:PORT,.../ROOT`, default
//! `silt`), laid out in [`keys`].
//!
//! Every read-modify-write is a transaction comparing the revision it read,
//! retried on conflict. A partition commit compares the partition state's
//! revision and the topic's `alive` key, so a leader whose epoch is stale
//! can never commit. Partitions of one flush commit in separate
//! transactions (etcd allows 128 operations per transaction by default);
//! a commit retried after a partial failure is recognised and answered
//! as committed.

use etcd_client::{
    Client, Compare, CompareOp, GetOptions, KeyValue, KvClient, PutOptions, Txn, TxnOp,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

mod acls;
mod credentials;
mod groups;
pub mod keys;
mod partitions;
mod topics;
mod transactions;

pub use keys::Keys;

/// Operations per transaction, under etcd's default limit of 128.
const OPS_PER_TXN: usize = 100;
/// Keys per page of a range read.
const LIST_PAGE: i64 = 1000;

/// A [`MetaStore`](super::MetaStore) in an etcd cluster, in every role.
pub struct EtcdStore {
    kv: KvClient,
    keys: Keys,
    /// The registration of the broker writing ([`crate::cluster`]): every
    /// write requires it still to hold, so a broker that left the cluster
    /// writes nothing more.
    member: Option<Member>,
}

/// A registered broker: its id and the lease of its registration.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    pub id: i32,
    pub lease: i64,
}

/// A value as read, with the revision to compare when writing it back
/// (`None`: the key does not exist).
struct Read<T> {
    value: Option<T>,
    revision: Option<i64>,
}

impl<T> Read<T> {
    /// The comparison that holds while the key is as it was read.
    fn unchanged(&self, key: &str) -> Compare {
        match self.revision {
            Some(revision) => Compare::mod_revision(key, CompareOp::Equal, revision),
            None => Compare::create_revision(key, CompareOp::Equal, 0),
        }
    }
}

/// A client for `url` (`etcd://HOST:PORT[,HOST:PORT...][/ROOT]`) and the
/// root its keys live under (default `silt`). With
/// `?tls_ca=FILE[&tls_cert=FILE&tls_key=FILE]` the client speaks TLS,
/// trusting the PEM CA and presenting the PEM client certificate.
pub async fn connect(url: &str) -> Result<(Client, String)> {
    let bad = || {
        Error::InvalidConfig(format!(
            "expected etcd://HOST:PORT[,HOST:PORT...][/ROOT][?tls_ca=FILE&tls_cert=FILE&tls_key=FILE], got '{url}'"
        ))
    };
    let rest = url.strip_prefix("etcd://").ok_or_else(bad)?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (hosts, root) = rest.split_once('/').unwrap_or((rest, "silt"));
    let tls = tls_options(query, hosts)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoints: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| format!("{scheme}://{h}"))
        .collect();
    let root = root.trim_end_matches('/');
    if endpoints.is_empty() || root.is_empty() {
        return Err(bad());
    }
    let mut options = etcd_client::ConnectOptions::new()
        .with_connect_timeout(std::time::Duration::from_secs(5))
        .with_timeout(std::time::Duration::from_secs(10));
    if let Some(tls) = tls {
        options = options.with_tls(tls);
    }
    let client = Client::connect(&endpoints, Some(options))
        .await
        .map_err(|e| Error::InvalidConfig(format!("cannot reach etcd at {hosts}: {e}")))?;
    Ok((client, root.to_string()))
}

/// The TLS of an etcd URL's query (`tls_ca`, `tls_cert`, `tls_key`).
fn tls_options(query: &str, hosts: &str) -> Result<Option<etcd_client::TlsOptions>> {
    let mut params = std::collections::HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Error::InvalidConfig(format!("etcd URL: '{pair}' is not KEY=VALUE")))?;
        if !matches!(k, "tls_ca" | "tls_cert" | "tls_key") {
            return Err(Error::InvalidConfig(format!(
                "etcd URL: unknown parameter '{k}' (tls_ca, tls_cert, tls_key)"
            )));
        }
        params.insert(k, v);
    }
    let read = |key: &str| -> Result<Option<Vec<u8>>> {
        params
            .get(key)
            .map(|path| {
                std::fs::read(path).map_err(|e| {
                    Error::InvalidConfig(format!("etcd URL: cannot read {key} {path}: {e}"))
                })
            })
            .transpose()
    };
    let Some(ca) = read("tls_ca")? else {
        if params.is_empty() {
            return Ok(None);
        }
        return Err(Error::InvalidConfig(
            "etcd URL: tls_cert and tls_key need tls_ca".into(),
        ));
    };
    // Certificates name the host the client connects to.
    let host = hosts.split(',').next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let mut tls = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(ca))
        .domain_name(host);
    match (read("tls_cert")?, read("tls_key")?) {
        (Some(cert), Some(key)) => tls = tls.identity(etcd_client::Identity::from_pem(cert, key)),
        (None, None) => {}
        _ => {
            return Err(Error::InvalidConfig(
                "etcd URL: tls_cert and tls_key go together".into(),
            ));
        }
    }
    Ok(Some(tls))
}

fn meta_error(e: impl std::fmt::Display) -> Error {
    Error::Meta(format!("etcd: {e}"))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Meta(format!("cannot encode metadata: {e}")))
}

fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    serde_json::from_slice(kv.value()).map_err(|e| Error::CorruptMetadata {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        reason: e.to_string(),
    })
}

impl EtcdStore {
    /// Connects to `url`: `etcd://HOST:PORT[,HOST:PORT...][/ROOT]`; with
    /// `member`, writes succeed only while that registration holds.
    pub async fn connect(url: &str, member: Option<Member>) -> Result<EtcdStore> {
        let (client, root) = connect(url).await?;
        let store = EtcdStore {
            kv: client.kv_client(),
            keys: Keys::new(&root),
            member,
        };
        // A first request proves the cluster answers.
        store
            .get::<serde_json::Value>(&store.keys.producer_ids())
            .await
            .map_err(|e| Error::InvalidConfig(format!("etcd at {url} does not answer: {e}")))?;
        Ok(store)
    }

    /// A broker id no other broker was given (`broker.id = "auto"`), from
    /// [`BrokerId::FIRST_AUTO`](crate::config::BrokerId::FIRST_AUTO) up.
    pub async fn allocate_broker_id(&self) -> Result<i32> {
        self.update(&self.keys.broker_ids(), |next: Option<i32>| {
            let id = next.unwrap_or(crate::config::BrokerId::FIRST_AUTO);
            Ok((Some(id + 1), id))
        })
        .await
    }

    async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Read<T>> {
        let response = self.kv.clone().get(key, None).await.map_err(meta_error)?;
        match response.kvs().first() {
            Some(kv) => Ok(Read {
                value: Some(decode(kv)?),
                revision: Some(kv.mod_revision()),
            }),
            None => Ok(Read {
                value: None,
                revision: None,
            }),
        }
    }

    /// Every key and value under `prefix` (ending in '/'), in key order,
    /// read in pages so that no response outgrows the gRPC message limit.
    async fn list(&self, prefix: &str) -> Result<Vec<KeyValue>> {
        let prefix = prefix.to_string();
        // The first key after every key starting with `prefix` ('/' + 1).
        let end = format!("{}0", prefix.trim_end_matches('/'));
        let mut all = Vec::new();
        let mut from = prefix.into_bytes();
        loop {
            let options = GetOptions::new()
                .with_range(end.as_str())
                .with_limit(LIST_PAGE);
            let mut page = self
                .kv
                .clone()
                .get(from.clone(), Some(options))
                .await
                .map_err(meta_error)?;
            let more = page.more();
            let kvs = page.take_kvs();
            match kvs.last() {
                Some(last) if more => {
                    // The next page starts right after the last key.
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => {
                    all.extend(kvs);
                    return Ok(all);
                }
            }
            all.extend(kvs);
        }
    }

    /// Takes the coordinator key `key` (of a group or transactional id)
    /// under this broker's lease, unless another live broker holds it
    /// (then `false`). Without a registration (no cluster) always `true`.
    async fn claim(&self, key: &str) -> Result<bool> {
        let Some(member) = self.member else {
            return Ok(true);
        };
        let put = TxnOp::put(
            key,
            member.id.to_string(),
            Some(PutOptions::new().with_lease(member.lease)),
        );
        let absent = Compare::create_revision(key, CompareOp::Equal, 0);
        Ok(self.txn(vec![absent], vec![put]).await? || self.holds(key).await?)
    }

    /// Gives up the coordinator key `key` if this broker holds it.
    async fn release(&self, key: &str) -> Result<()> {
        let Some(member) = self.member else {
            return Ok(());
        };
        let mine = Compare::lease(key, CompareOp::Equal, member.lease);
        self.txn(vec![mine], vec![TxnOp::delete(key, None)])
            .await
            .map(|_| ())
    }

    /// Whether this broker holds the coordinator key `key`.
    async fn holds(&self, key: &str) -> Result<bool> {
        let Some(member) = self.member else {
            return Ok(true);
        };
        let held = self.kv.clone().get(key, None).await.map_err(meta_error)?;
        Ok(held
            .kvs()
            .first()
            .is_some_and(|kv| kv.lease() == member.lease))
    }

    /// The comparison that holds while this broker holds the coordinator
    /// key `key` (none without a registration).
    fn holding(&self, key: &str) -> Option<Compare> {
        let member = self.member?;
        Some(Compare::lease(key, CompareOp::Equal, member.lease))
    }

    /// Every value under `prefix`, decoded, in key order.
    async fn list_decoded<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<T>> {
        self.list(prefix).await?.iter().map(decode).collect()
    }

    /// Runs `ops` if every one of `compares` holds (and this broker is
    /// still registered); whether they ran.
    async fn txn(&self, compares: Vec<Compare>, ops: Vec<TxnOp>) -> Result<bool> {
        let mut compares = compares;
        let registration = self.member.map(|m| (self.keys.broker(m.id), m));
        if let Some((key, member)) = &registration {
            compares.push(Compare::lease(key.as_str(), CompareOp::Equal, member.lease));
        }
        let txn = Txn::new().when(compares).and_then(ops);
        let response = self.kv.clone().txn(txn).await.map_err(meta_error)?;
        if response.succeeded() {
            return Ok(true);
        }
        if let Some((key, member)) = registration {
            let held = self.kv.clone().get(key, None).await.map_err(meta_error)?;
            if held
                .kvs()
                .first()
                .is_none_or(|kv| kv.lease() != member.lease)
            {
                return Err(Error::LeaseLost);
            }
        }
        Ok(false)
    }

    /// Runs `ops` in transactions of at most [`OPS_PER_TXN`] operations.
    async fn write_all(&self, ops: Vec<TxnOp>) -> Result<()> {
        for chunk in ops.chunks(OPS_PER_TXN) {
            self.txn(Vec::new(), chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// Reads the value at `path`, lets `change` turn it into the value to
    /// store, and writes it if the key did not change meanwhile; retries
    /// otherwise. `change` returns `Ok(None)` to write nothing.
    async fn update<T, R>(
        &self,
        key: &str,
        mut change: impl FnMut(Option<T>) -> Result<(Option<T>, R)>,
    ) -> Result<R>
    where
        T: Serialize + DeserializeOwned,
    {
        loop {
            let read: Read<T> = self.get(key).await?;
            let compare = read.unchanged(key);
            let (new, result) = change(read.value)?;
            let Some(new) = new else {
                return Ok(result);
            };
            let put = TxnOp::put(key, encode(&new)?, None);
            if self.txn(vec![compare], vec![put]).await? {
                return Ok(result);
            }
        }
    }

    /// Whether this broker holds the controller key.
    async fn is_controller(&self) -> Result<bool> {
        let Some(member) = self.member else {
            return Ok(false);
        };
        let held = self
            .kv
            .clone()
            .get(self.keys.controller(), None)
            .await
            .map_err(meta_error)?;
        Ok(held
            .kvs()
            .first()
            .is_some_and(|kv| kv.lease() == member.lease))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;
    use crate::meta::{
        CommitOutcome, CommittedOffset, Extent, GroupStore, PartitionCommit, PartitionStore,
        TopicStore, conformance,
    };

    /// The etcd the tests run against (`.ci/run` starts one).
    fn endpoint() -> String {
        std::env::var("ETCD_TEST_ENDPOINT").unwrap_or_else(|_| "127.0.0.1:23790".into())
    }

    /// A fresh root, so tests never see each other's keys.
    fn fresh_root() -> String {
        format!(
            "etcd://{}/silt-test-{}",
            endpoint(),
            Uuid::new_v4().simple()
        )
    }

    async fn store() -> EtcdStore {
        EtcdStore::connect(&fresh_root(), None)
            .await
            .expect("etcd is running (ETCD_TEST_ENDPOINT)")
    }

    #[tokio::test]
    async fn writes_need_the_registration_and_assignments_the_controller() {
        let url = fresh_root();
        let ttl = std::time::Duration::from_secs(5);
        let me = crate::cluster::BrokerInfo {
            id: 1,
            host: "127.0.0.1".into(),
            port: 9092,
            ready: true,
            listeners: Default::default(),
            rack: None,
        };
        let cluster = crate::cluster::Cluster::join(&url, &me, ttl).await.unwrap();
        let store = EtcdStore::connect(&url, Some(cluster.member()))
            .await
            .unwrap();
        let configs = BTreeMap::from([("k".to_string(), "v".to_string())]);
        store.set_broker_configs(configs.clone()).await.unwrap();
        let t = conformance::topic("assigned", 1);
        store.create_topic(t.clone()).await.unwrap();
        let refused = store.assign_leader(t.id, 0, 1).await.unwrap_err();
        assert!(
            refused.to_string().contains("not the controller"),
            "{refused}"
        );
        assert!(cluster.campaign().await.unwrap());
        // Only a ready member is given a partition: not one that never
        // joined, nor one leaving.
        let absent = store.assign_leader(t.id, 0, 2).await.unwrap_err();
        assert!(
            absent.to_string().contains("not a ready member"),
            "{absent}"
        );
        cluster.announce(&me, false).await.unwrap();
        let leaving = store.assign_leader(t.id, 0, 1).await.unwrap_err();
        assert!(
            leaving.to_string().contains("not a ready member"),
            "{leaving}"
        );
        cluster.announce(&me, true).await.unwrap();
        assert_eq!(store.assign_leader(t.id, 0, 1).await.unwrap(), 1);
        let check = cluster.check();
        assert!(check.is_held());
        // As when the lease ends and the controller moves the partitions.
        cluster.leave().await;
        assert!(!check.is_held());
        let refused = store.set_broker_configs(BTreeMap::new()).await.unwrap_err();
        assert!(
            refused.to_string().contains("no longer registered"),
            "{refused}"
        );
        assert_eq!(store.broker_configs().await.unwrap(), configs);
    }

    /// A broker `id` registered on `url`, and its store.
    async fn member(url: &str, id: i32) -> (crate::cluster::Cluster, EtcdStore) {
        let me = crate::cluster::BrokerInfo {
            id,
            host: "127.0.0.1".into(),
            port: 9092,
            ready: true,
            listeners: Default::default(),
            rack: None,
        };
        let ttl = std::time::Duration::from_secs(5);
        let cluster = crate::cluster::Cluster::join(url, &me, ttl).await.unwrap();
        let store = EtcdStore::connect(url, Some(cluster.member()))
            .await
            .unwrap();
        (cluster, store)
    }

    #[tokio::test]
    async fn one_coordinator_at_a_time_writes_a_group() {
        let url = fresh_root();
        let (_a_cluster, a) = member(&url, 1).await;
        let (_b_cluster, b) = member(&url, 2).await;
        let offset = CommittedOffset {
            topic: "t".into(),
            partition: 0,
            offset: 5,
            leader_epoch: 0,
            metadata: None,
            commit_time_ms: 1,
        };
        assert!(a.claim_group("g").await.unwrap());
        assert!(a.claim_group("g").await.unwrap(), "claimed again");
        assert!(!b.claim_group("g").await.unwrap());
        a.commit_offsets("g", vec![offset.clone()]).await.unwrap();
        let refused = b.commit_offsets("g", vec![offset.clone()]).await;
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("no longer coordinates")
        );
        a.release_group("g").await.unwrap();
        assert!(b.claim_group("g").await.unwrap());
        assert!(a.delete_offsets("g", vec![("t".into(), 0)]).await.is_err());
        b.delete_group("g").await.unwrap();
        assert_eq!(b.group("g").await.unwrap(), (None, Vec::new()));
    }

    #[tokio::test]
    async fn conformance_suite() {
        conformance::topics_lifecycle(&store().await).await;
        conformance::commits_are_epoch_guarded(&store().await).await;
        conformance::producer_ids_are_unique(&store().await).await;
        conformance::leader_epoch_bumps_fence_the_old_leader(&store().await).await;
        conformance::log_start_moves_forward_under_the_epoch(&store().await).await;
        conformance::extents_are_replaced_only_as_stored(&store().await).await;
        conformance::export_progress_moves_under_the_epoch(&store().await).await;
        conformance::partitions_beyond_the_count_do_not_exist(&store().await).await;
        conformance::broker_configs_round_trip(&store().await).await;
        conformance::groups_and_offsets(&store().await).await;
        conformance::deleting_a_topic_deletes_its_offsets(&store().await).await;
        conformance::transactions_and_their_offsets(&store().await).await;
        conformance::scram_credentials_by_user_and_mechanism(&store().await).await;
        conformance::acls_and_their_version(&store().await).await;
        conformance::quotas_by_entity(&store().await).await;
    }

    #[tokio::test]
    async fn bad_urls_and_unreachable_clusters_are_named() {
        let Err(e) = EtcdStore::connect("http://127.0.0.1:2379", None).await else {
            panic!("accepted a non-etcd URL");
        };
        assert!(e.to_string().contains("expected etcd://"), "{e}");
        let Err(e) = EtcdStore::connect("etcd://127.0.0.1:1", None).await else {
            panic!("connected to nothing");
        };
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
    }

    #[tokio::test]
    async fn long_partitions_are_read_in_pages() {
        let store = store().await;
        let topic = conformance::topic("long", 1);
        store.create_topic(topic.clone()).await.unwrap();
        let extents: Vec<Extent> = (0..2_500)
            .map(|i| Extent {
                object: Uuid::now_v7(),
                position: 0,
                length: 10,
                base_offset: i,
                last_offset: i,
                max_timestamp: i,
                crc: None,
                compacted: false,
                tombstones_due_ms: None,
                entry_list: None,
            })
            .collect();
        for chunk in extents.chunks(50) {
            let commit = PartitionCommit {
                topic: topic.id,
                partition: 0,
                leader_epoch: 0,
                extents: chunk.to_vec(),
                producers: BTreeMap::new(),
                aborted: Vec::new(),
            };
            let outcomes = store.commit(vec![commit]).await.unwrap();
            assert_eq!(outcomes, vec![CommitOutcome::Committed]);
        }
        assert_eq!(store.partition(topic.id, 0).await.unwrap().extents, extents);
    }

    #[tokio::test]
    async fn a_thousand_partitions_commit_and_a_retry_is_recognised() {
        let store = store().await;
        let topic = conformance::topic("wide", 1000);
        store.create_topic(topic.clone()).await.unwrap();
        let object = Uuid::now_v7();
        let commits: Vec<PartitionCommit> = (0..1000)
            .map(|p| PartitionCommit {
                topic: topic.id,
                partition: p,
                leader_epoch: 0,
                extents: vec![Extent {
                    object,
                    position: p as u64 * 10,
                    length: 10,
                    base_offset: 0,
                    last_offset: 4,
                    max_timestamp: 1,
                    crc: None,
                    compacted: false,
                    tombstones_due_ms: None,
                    entry_list: None,
                }],
                producers: BTreeMap::new(),
                aborted: Vec::new(),
            })
            .collect();
        let outcomes = store.commit(commits.clone()).await.unwrap();
        assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed));
        // The same commit again (its answer was lost): committed, not doubled.
        let outcomes = store.commit(commits[..10].to_vec()).await.unwrap();
        assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed));
        let p = store.partition(topic.id, 999).await.unwrap();
        assert_eq!(p.extents, commits[999].extents);
        assert_eq!(p.committed_end(), 5);
    }
}
