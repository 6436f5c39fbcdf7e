//! `silt group list|describe|reset-offsets|delete`.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::topic::offsets;
use super::{Cluster, check};

fn group_id(group: &str) -> GroupId {
    GroupId(StrBytes::from_string(group.to_string()))
}

/// Prints every group with its state (each broker lists the groups it
/// coordinates).
pub async fn list(cluster: &mut Cluster) -> anyhow::Result<()> {
    let mut groups: Vec<(String, String)> = Vec::new();
    for broker in cluster.broker_ids().await? {
        let client = cluster.leader(broker).await?;
        let response = client.call(ListGroupsRequest::default(), 4).await?;
        check(response.error_code, "cannot list groups")?;
        groups.extend(
            response
                .groups
                .iter()
                .map(|g| (g.group_id.to_string(), g.group_state.to_string())),
        );
    }
    groups.sort();
    for (group, state) in groups {
        println!("{group}\t{state}");
    }
    Ok(())
}

/// Where a reset moves each partition.
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(i64),
    /// Milliseconds since the epoch.
    Time(i64),
}

/// Prints a group's state, members with their assignments, and per
/// partition the committed offset, the log end offset and the lag.
pub async fn describe(cluster: &mut Cluster, group: &str) -> anyhow::Result<()> {
    let described = &describe_group(cluster, group).await?;
    let committed = committed_offsets(cluster, group).await?;
    if described.group_state.as_str() == "Dead" && committed.is_empty() {
        bail!("group '{group}' does not exist");
    }
    println!(
        "Group: {group}\tState: {}\tProtocol: {}/{}\tMembers: {}",
        described.group_state.as_str(),
        described.protocol_type.as_str(),
        described.protocol_data.as_str(),
        described.members.len()
    );
    if !described.members.is_empty() {
        println!("MEMBER\tCLIENT-ID\tHOST\tASSIGNMENT");
    }
    for m in &described.members {
        let assignment: Vec<String> = assigned(&m.member_assignment)
            .into_iter()
            .map(|(t, p)| format!("{t}-{p}"))
            .collect();
        println!(
            "{}\t{}\t{}\t{}",
            m.member_id.as_str(),
            m.client_id.as_str(),
            m.client_host.as_str(),
            assignment.join(",")
        );
    }
    if committed.is_empty() {
        return Ok(());
    }
    println!("TOPIC\tPARTITION\tCOMMITTED\tLOG-END\tLAG");
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for ((topic, partition), offset) in &committed {
        by_topic
            .entry(topic)
            .or_default()
            .push((*partition, *offset));
    }
    for (topic, partitions) in by_topic {
        let info = cluster.topic(topic).await?;
        let ends = offsets(cluster, topic, &info.partitions, -1).await?;
        for (partition, offset) in partitions {
            let end = ends.get(&partition).copied().unwrap_or(-1);
            println!(
                "{topic}\t{partition}\t{offset}\t{end}\t{}",
                (end - offset).max(0)
            );
        }
    }
    Ok(())
}

/// Moves an empty group's committed offsets for `topic`.
pub async fn reset_offsets(
    cluster: &mut Cluster,
    group: &str,
    topic: &str,
    to: ResetTo,
) -> anyhow::Result<()> {
    let described = describe_group(cluster, group).await?;
    let state = described.group_state.as_str();
    if !matches!(state, "Empty" | "Dead") {
        bail!(
            "group '{group}' is active ({state}, {} members): stop its consumers before resetting offsets",
            described.members.len()
        );
    }
    let info = cluster.topic(topic).await?;
    let targets: BTreeMap<i32, i64> = match to {
        ResetTo::Earliest => offsets(cluster, topic, &info.partitions, -2).await?,
        ResetTo::Latest => offsets(cluster, topic, &info.partitions, -1).await?,
        ResetTo::Offset(offset) => {
            let starts = offsets(cluster, topic, &info.partitions, -2).await?;
            let ends = offsets(cluster, topic, &info.partitions, -1).await?;
            starts
                .iter()
                .map(|(p, start)| (*p, offset.clamp(*start, ends[p])))
                .collect()
        }
        ResetTo::Time(ms) => {
            let found = offsets(cluster, topic, &info.partitions, ms).await?;
            let ends = offsets(cluster, topic, &info.partitions, -1).await?;
            found
                .into_iter()
                .map(|(p, o)| (p, if o < 0 { ends[&p] } else { o }))
                .collect()
        }
    };
    let partitions = targets
        .iter()
        .map(|(p, o)| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions),
        ]);
    let response = cluster.coordinator(group).await?.call(request, 8).await?;
    for p in response.topics.iter().flat_map(|t| &t.partitions) {
        check(
            p.error_code,
            &format!(
                "cannot reset {topic}-{} of group '{group}'",
                p.partition_index
            ),
        )?;
    }
    println!("TOPIC\tPARTITION\tNEW-OFFSET");
    for (p, o) in targets {
        println!("{topic}\t{p}\t{o}");
    }
    Ok(())
}

/// DescribeGroups of one group.
async fn describe_group(cluster: &mut Cluster, group: &str) -> anyhow::Result<DescribedGroup> {
    let request = DescribeGroupsRequest::default().with_groups(vec![group_id(group)]);
    let response = cluster.coordinator(group).await?.call(request, 5).await?;
    let described = response
        .groups
        .into_iter()
        .next()
        .context("empty DescribeGroups response")?;
    check(
        described.error_code,
        &format!("cannot describe group '{group}'"),
    )?;
    Ok(described)
}

/// Deletes a group without members, with its offsets.
pub async fn delete(cluster: &mut Cluster, group: &str) -> anyhow::Result<()> {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]);
    let response = cluster.coordinator(group).await?.call(request, 2).await?;
    let result = response
        .results
        .first()
        .context("empty DeleteGroups response")?;
    check(result.error_code, &format!("cannot delete group '{group}'"))?;
    println!("Deleted group {group}.");
    Ok(())
}

async fn committed_offsets(
    cluster: &mut Cluster,
    group: &str,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(None);
    let response = cluster.coordinator(group).await?.call(request, 7).await?;
    check(
        response.error_code,
        &format!("cannot fetch offsets of group '{group}'"),
    )?;
    Ok(response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.committed_offset >= 0)
                .map(move |p| ((t.name.to_string(), p.partition_index), p.committed_offset))
        })
        .collect())
}

/// (topic, partition) pairs of a consumer protocol assignment.
fn assigned(assignment: &bytes::Bytes) -> Vec<(String, i32)> {
    if assignment.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([assignment[0], assignment[1]]);
    let mut body = assignment.slice(2..);
    ConsumerProtocolAssignment::decode(&mut body, version.clamp(0, 3))
        .map(|a| {
            a.assigned_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.to_string(), *p)))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` or epoch milliseconds.
pub fn parse_datetime(text: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        anyhow::anyhow!(
            "'{text}' is not a time: expected 2024-05-01T12:00:00Z or epoch milliseconds"
        )
    };
    let (date, rest) = text.split_once('T').ok_or_else(bad)?;
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y)?, num(mo)?, num(da)?);
    let zone_at = rest.find(['Z', '+', '-']).ok_or_else(bad)?;
    let (time, zone) = rest.split_at(zone_at);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<&str> = hms.split(':').collect();
    let [h, mi, s] = t.as_slice() else {
        return Err(bad());
    };
    let millis = if fraction.is_empty() {
        0
    } else {
        num(&format!("{fraction:0<3}")[..3])?
    };
    let offset_minutes = match zone {
        "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (zh, zm) = z[1..].split_once(':').ok_or_else(bad)?;
            sign * (num(zh)? * 60 + num(zm)?)
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return Err(bad());
    }
    // Days since 1970-01-01 of a proleptic Gregorian date.
    let (yy, mm) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + num(h)? * 3600 + num(mi)? * 60 + num(s)? - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::parse_datetime;

    #[test]
    fn datetimes_parse_to_epoch_millis() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_datetime("2000-01-01T00:00:00Z").unwrap(),
            946_684_800_000
        );
        assert_eq!(
            parse_datetime("2024-02-29T12:30:15.250Z").unwrap(),
            1_709_209_815_250
        );
        assert_eq!(
            parse_datetime("2024-02-29T14:30:15.250+02:00").unwrap(),
            1_709_209_815_250
        );
        assert_eq!(parse_datetime("1234").unwrap(), 1234);
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2024-13-01T00:00:00Z").is_err());
    }
}
