//! The broker's node id: the configured one, or with `broker.id = "auto"`
//! the one recorded in the data dir's `broker.id` file, else a new one
//! (the next from etcd's counter in a cluster; the first auto id alone),
//! recorded before the broker uses it. A data dir keeps its id, so an
//! instance restarted on its disk comes back as the same broker.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::config::{BrokerId, Config};
use crate::error::{Error, Result};
use crate::meta::etcd::EtcdStore;

/// The file in the data dir that records the id.
const ID_FILE: &str = "broker.id";

/// This broker's id under `config` (its data dir locked by the caller).
pub async fn resolve(config: &Config) -> Result<i32> {
    let dir = &config.broker.data_dir;
    let recorded = recorded(dir)?;
    match (config.broker.id, recorded) {
        (BrokerId::Fixed(id), Some(other)) if id != other => Err(Error::InvalidConfig(format!(
            "broker.id is {id}, but the data dir {} belongs to broker {other} \
             (its {ID_FILE} file): use that id, \"auto\", or another data dir",
            dir.display()
        ))),
        (BrokerId::Fixed(id), _) => Ok(id),
        (BrokerId::Auto, Some(id)) => Ok(id),
        (BrokerId::Auto, None) => {
            let id = match config
                .storage
                .meta
                .as_deref()
                .filter(|_| config.in_cluster())
            {
                Some(url) => {
                    EtcdStore::connect(url, None)
                        .await?
                        .allocate_broker_id()
                        .await?
                }
                None => BrokerId::FIRST_AUTO,
            };
            // A crash here loses the allocated id: the next start takes another.
            crate::failpoint::hit("broker_id.after_allocate");
            record(dir, id)?;
            tracing::info!(id, "allocated this broker's id");
            Ok(id)
        }
    }
}

/// The id recorded in `dir`, if any.
fn recorded(dir: &Path) -> Result<Option<i32>> {
    let path = dir.join(ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            Error::InvalidConfig(format!(
                "{} does not hold a broker id: '{}'",
                path.display(),
                text.trim()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records `id` in `dir`: written aside, synced, then renamed, so the file
/// is either absent or whole.
fn record(dir: &Path, id: i32) -> Result<()> {
    let aside = dir.join(format!("{ID_FILE}.new"));
    let mut file = File::create(&aside)?;
    writeln!(file, "{id}")?;
    file.sync_all()?;
    std::fs::rename(&aside, dir.join(ID_FILE))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, id: BrokerId) -> Config {
        let mut config = Config::default();
        config.broker.data_dir = dir.to_path_buf();
        config.broker.id = id;
        config
    }

    #[tokio::test]
    async fn auto_is_recorded_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = resolve(&config(dir.path(), BrokerId::Auto)).await.unwrap();
        assert_eq!(first, BrokerId::FIRST_AUTO);
        std::fs::write(dir.path().join(ID_FILE), "1007\n").unwrap();
        assert_eq!(
            resolve(&config(dir.path(), BrokerId::Auto)).await.unwrap(),
            1007
        );
        assert_eq!(
            resolve(&config(dir.path(), BrokerId::Fixed(1007)))
                .await
                .unwrap(),
            1007
        );
    }

    #[tokio::test]
    async fn a_fixed_id_other_than_the_recorded_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            resolve(&config(dir.path(), BrokerId::Fixed(3)))
                .await
                .unwrap(),
            3
        );
        resolve(&config(dir.path(), BrokerId::Auto)).await.unwrap();
        let err = resolve(&config(dir.path(), BrokerId::Fixed(3)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("belongs to broker 1000"), "{err}");
        std::fs::write(dir.path().join(ID_FILE), "x\n").unwrap();
        let err = resolve(&config(dir.path(), BrokerId::Auto))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("does not hold a broker id"),
            "{err}"
        );
    }
}
