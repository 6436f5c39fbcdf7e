//! `silt cluster`: the cluster as Metadata describes it, and moving a
//! partition's leadership (through etcd).

use super::Cluster;

/// Prints the brokers, the controller, and every partition's leader and
/// leader epoch.
pub async fn describe(cluster: &mut Cluster) -> anyhow::Result<()> {
    let metadata = cluster.metadata(None).await?;
    let id = metadata.cluster_id.as_ref().map_or("", |id| id.as_str());
    println!("ClusterId: {id}\tController: {}", metadata.controller_id.0);
    for broker in &metadata.brokers {
        let rack = broker
            .rack
            .as_ref()
            .map_or(String::new(), |r| format!("\tRack: {}", r.as_str()));
        println!(
            "Broker: {}\t{}:{}{rack}",
            broker.node_id.0,
            broker.host.as_str(),
            broker.port
        );
    }
    let mut topics: Vec<_> = metadata.topics.iter().collect();
    topics.sort_by_key(|t| t.name.as_ref().map(|n| n.0.to_string()));
    for topic in topics {
        let name = topic.name.as_ref().map_or("", |n| n.0.as_str());
        let mut partitions: Vec<_> = topic.partitions.iter().collect();
        partitions.sort_by_key(|p| p.partition_index);
        for p in partitions {
            println!(
                "Topic: {name}\tPartition: {}\tLeader: {}\tLeaderEpoch: {}",
                p.partition_index, p.leader_id.0, p.leader_epoch
            );
        }
    }
    Ok(())
}

/// Prints the live brokers, the controller and how many partitions are
/// led by a live broker; fails, naming each problem, when there are fewer
/// than `min_brokers` brokers, no controller, or a partition without a
/// live leader.
pub async fn health(cluster: &mut Cluster, min_brokers: usize) -> anyhow::Result<()> {
    let metadata = cluster.metadata(None).await?;
    let mut live: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    live.sort_unstable();
    let controller = metadata.controller_id.0;
    let ids: Vec<String> = live.iter().map(i32::to_string).collect();
    println!(
        "Brokers: {} live ({})\tController: {controller}",
        live.len(),
        ids.join(", ")
    );
    let mut problems = Vec::new();
    if live.len() < min_brokers {
        problems.push(format!(
            "{} live brokers, fewer than {min_brokers}",
            live.len()
        ));
    }
    if !live.contains(&controller) {
        problems.push("no controller".to_string());
    }
    let mut partitions = 0;
    let mut leaderless = Vec::new();
    for topic in &metadata.topics {
        let name = topic.name.as_ref().map_or("", |n| n.0.as_str());
        for p in &topic.partitions {
            partitions += 1;
            if !live.contains(&p.leader_id.0) {
                leaderless.push(format!(
                    "{name} partition {} has no live leader",
                    p.partition_index
                ));
            }
        }
    }
    println!(
        "Partitions: {} of {partitions} led by a live broker",
        partitions - leaderless.len()
    );
    problems.extend(leaderless);
    if problems.is_empty() {
        println!("Healthy");
        return Ok(());
    }
    anyhow::bail!("unhealthy: {}", problems.join("; "))
}

/// Moves a partition's leadership to broker `to` and waits until it led it.
pub async fn move_leader(meta: &str, topic: &str, partition: i32, to: i32) -> anyhow::Result<()> {
    let deadline = std::time::Duration::from_secs(30);
    let (epoch, took) = silt::cluster::move_leader(meta, topic, partition, to, deadline).await?;
    println!(
        "Moved {topic} partition {partition} to broker {to} (leader epoch {epoch}) in {} ms.",
        took.as_millis()
    );
    Ok(())
}
