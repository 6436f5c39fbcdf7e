//! What `/metrics` computes on each scrape, from the broker's in-memory
//! state (never a metadata store round trip): build and process figures,
//! the cluster as this broker sees it, consumer lag and export lag.
//! Rendered here rather than through the recorder, so a series disappears
//! with its subject (a deleted group's lag, a partition led elsewhere now).

use std::fmt::Write;

use crate::broker::Broker;

/// The scrape-time families in Prometheus' text format.
pub async fn render(broker: &Broker) -> String {
    let mut out = Exposition::default();
    out.family("silt_build_info", "gauge", "The running build (always 1).");
    out.sample(
        "silt_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    if let Some(seconds) = cpu_seconds() {
        out.family(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
        );
        out.sample("process_cpu_seconds_total", &[], seconds);
    }
    if let Some((resident, peak)) = resident_memory() {
        out.family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory, in bytes.",
        );
        out.sample("process_resident_memory_bytes", &[], resident as f64);
        out.family(
            "process_resident_memory_peak_bytes",
            "gauge",
            "The peak of resident memory, in bytes.",
        );
        out.sample("process_resident_memory_peak_bytes", &[], peak as f64);
    }

    let (mut led, mut leaderless) = (0, 0);
    for topic in broker.topics() {
        for partition in &topic.partitions {
            match broker.leader_of(partition) {
                Some(leader) if leader.broker == broker.id => led += 1,
                Some(_) => {}
                None => leaderless += 1,
            }
        }
    }
    let gauges = [
        (
            "silt_live_brokers",
            "Brokers live in the cluster.",
            broker.live_brokers().len() as f64,
        ),
        (
            "silt_controller_id",
            "The controller's broker id (-1 while none is elected).",
            f64::from(broker.controller_id()),
        ),
        (
            "silt_leader_partitions",
            "Partitions this broker leads.",
            f64::from(led),
        ),
        (
            "silt_leaderless_partitions",
            "Partitions no live broker leads.",
            f64::from(leaderless),
        ),
    ];
    for (name, help, value) in gauges {
        out.family(name, "gauge", help);
        out.sample(name, &[], value);
    }

    out.family(
        "silt_consumer_lag",
        "gauge",
        "Messages between a group's committed offset and the partition's end.",
    );
    for (group, _, _) in broker.groups.list().await {
        for lag in broker.consumer_lag(&group).await {
            let partition = lag.partition.to_string();
            let labels = [
                ("group", group.as_str()),
                ("topic", &lag.topic),
                ("partition", &partition),
            ];
            out.sample("silt_consumer_lag", &labels, lag.lag as f64);
        }
    }
    if broker.config.admin.partition_metrics {
        partition_offsets(broker, &mut out);
    }
    out.family(
        "silt_export_lag_records",
        "gauge",
        "Committed records of a partition this broker leads not exported yet.",
    );
    for (topic, partition, lag) in broker.export_lags() {
        let partition = partition.to_string();
        let labels = [("topic", topic.as_str()), ("partition", &partition)];
        out.sample("silt_export_lag_records", &labels, lag as f64);
    }
    out.text
}

/// The log start and end offsets of the partitions this broker leads.
fn partition_offsets(broker: &Broker, out: &mut Exposition) {
    let mut samples = Vec::new();
    for topic in broker.topics() {
        for partition in &topic.partitions {
            if partition.leadership().is_none() {
                continue;
            }
            let offsets = broker.log.offsets(partition);
            let index = partition.index.to_string();
            samples.push((
                topic.name.clone(),
                index,
                offsets.log_start,
                offsets.high_watermark,
            ));
        }
    }
    for (name, help, end) in [
        (
            "silt_partition_log_start_offset",
            "A led partition's first offset (its low watermark).",
            false,
        ),
        (
            "silt_partition_log_end_offset",
            "A led partition's next offset (its high watermark).",
            true,
        ),
    ] {
        out.family(name, "gauge", help);
        for (topic, partition, start, high) in &samples {
            let labels = [("topic", topic.as_str()), ("partition", partition.as_str())];
            out.sample(name, &labels, if end { *high } else { *start } as f64);
        }
    }
}

/// Prometheus' text exposition format, written line by line.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// A label value as the text format quotes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// This process's CPU time so far, user and system, in seconds (Linux:
/// `/proc/self/stat` counts it in USER_HZ, 100 per second).
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces; utime and stime are fields 14 and 15 of the line.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// This process's resident memory and its peak, in bytes (Linux).
fn resident_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = |field: &str| {
        let line = status.lines().find(|l| l.starts_with(field))?;
        let value = line[field.len()..].trim().trim_end_matches("kB").trim();
        value.parse::<u64>().ok().map(|k| k * 1024)
    };
    Some((kib("VmRSS:")?, kib("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_count_the_work_done() {
        let start = cpu_seconds().expect("/proc/self/stat");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut spins = 0u64;
        while cpu_seconds().unwrap() < start + 0.05 {
            assert!(std::time::Instant::now() < deadline, "no CPU time counted");
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = Exposition::default();
        out.sample("m", &[("group", "a\"b\\c\nd")], 2.0);
        assert_eq!(out.text, "m{group=\"a\\\"b\\\\c\\nd\"} 2\n");
    }
}
