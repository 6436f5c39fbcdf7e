//! The controller: one broker of the cluster (elected through the
//! `live/controller` key under its lease) assigns every partition a leader
//! among the live brokers. A partition pinned to a live broker (`silt
//! cluster move`) goes there, and one without a live leader gets one, at
//! once; beyond that, unpinned leaderships move only to even the brokers'
//! loads out, a few per second, so that a broker joining does not pause
//! every partition at once. Each assignment raises the partition's leader epoch
//! ([`PartitionStore::assign_leader`](crate::meta::PartitionStore::assign_leader)), fencing the previous leader.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Cluster;
use crate::meta::{MetaStore, PartitionLeader};

/// How often the controller looks again without a change, and at most
/// how often it evens loads out.
const BALANCE_INTERVAL: Duration = Duration::from_secs(1);
/// Leaderships moved per balancing round, at most.
const MOVES_PER_ROUND: usize = 8;
/// Assignments in flight at once.
const ASSIGN_CONCURRENCY: usize = 32;

/// A partition of a topic.
pub type PartitionId = (Uuid, i32);

/// The leader changes that move every partition of `partitions` pinned
/// to a live broker (`pins`) there and assign every other one a live
/// leader (from `brokers`), then move at most `balancing_moves` unpinned
/// leaderships from the most to the least loaded brokers while their loads
/// differ by more than one. `leaders` maps partitions to their current
/// leader; the partitions of a `waiting` (dead) leader stay as they are.
pub fn plan(
    brokers: &[i32],
    partitions: &[PartitionId],
    leaders: &HashMap<PartitionId, i32>,
    pins: &HashMap<PartitionId, i32>,
    waiting: &HashSet<i32>,
    balancing_moves: usize,
) -> Vec<(PartitionId, i32)> {
    if brokers.is_empty() {
        return Vec::new();
    }
    let pin =
        |partition: &PartitionId| pins.get(partition).copied().filter(|b| brokers.contains(b));
    let mut led: BTreeMap<i32, Vec<PartitionId>> =
        brokers.iter().map(|b| (*b, Vec::new())).collect();
    let mut moves = Vec::new();
    let mut orphans = Vec::new();
    for partition in partitions {
        if leaders.get(partition).is_some_and(|b| waiting.contains(b)) {
            continue;
        }
        let leader = leaders
            .get(partition)
            .copied()
            .filter(|b| brokers.contains(b));
        let target = match (pin(partition), leader) {
            (Some(to), from) => {
                if from != Some(to) {
                    moves.push((*partition, to));
                }
                to
            }
            (None, Some(from)) => from,
            (None, None) => {
                orphans.push(*partition);
                continue;
            }
        };
        led.get_mut(&target)
            .expect("a live broker")
            .push(*partition);
    }
    let least_loaded = |led: &BTreeMap<i32, Vec<PartitionId>>| {
        led.iter()
            .min_by_key(|(id, list)| (list.len(), **id))
            .map(|(id, _)| *id)
            .expect("brokers is not empty")
    };
    for partition in orphans {
        let to = least_loaded(&led);
        led.get_mut(&to).expect("a broker").push(partition);
        moves.push((partition, to));
    }
    for _ in 0..balancing_moves {
        let to = least_loaded(&led);
        let (from, most) = led
            .iter()
            .max_by_key(|(id, list)| (list.len(), std::cmp::Reverse(**id)))
            .map(|(id, list)| (*id, list.len()))
            .expect("brokers is not empty");
        if most <= led[&to].len() + 1 {
            break;
        }
        let from_list = led.get_mut(&from).expect("a broker");
        let Some(i) = from_list.iter().rposition(|p| pin(p).is_none()) else {
            break;
        };
        let partition = from_list.remove(i);
        led.get_mut(&to).expect("a broker").push(partition);
        moves.push((partition, to));
    }
    moves
}

/// Campaigns for the controller role and, while holding it, keeps every
/// partition led, until `stop`; a dead leader's partitions wait `grace`
/// for it to come back. Every broker runs this.
pub async fn run(
    cluster: Arc<Cluster>,
    meta: Arc<dyn MetaStore>,
    grace: Duration,
    stop: CancellationToken,
) {
    let mut changes = cluster.changes();
    let mut controlling = false;
    // Assignments made, until the leaders mirror shows them.
    let mut assigned: HashMap<PartitionId, PartitionLeader> = HashMap::new();
    let mut last_balance = Instant::now();
    // Leaders gone, and since when.
    let mut departed: HashMap<i32, Instant> = HashMap::new();
    loop {
        if !controlling {
            controlling = match cluster.campaign().await {
                Ok(won) => won,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot campaign for controller");
                    false
                }
            };
            if controlling {
                tracing::info!("this broker is the controller");
            }
        }
        if controlling {
            let balance = last_balance.elapsed() >= BALANCE_INTERVAL;
            if balance {
                last_balance = Instant::now();
            }
            let moves = if balance { MOVES_PER_ROUND } else { 0 };
            let waiting = waiting_for(&cluster, &mut departed, grace);
            assign(&cluster, meta.as_ref(), &mut assigned, &waiting, moves).await;
        }
        let [brokers, controller, leaders, topics, pins] = &mut changes;
        tokio::select! {
            _ = brokers.changed() => {}
            _ = controller.changed() => {}
            _ = leaders.changed() => {}
            _ = topics.changed() => {}
            _ = pins.changed() => {}
            () = tokio::time::sleep(BALANCE_INTERVAL) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// The dead leaders whose partitions still wait for them (for `grace`
/// since they were first seen gone); `departed` remembers since when.
fn waiting_for(
    cluster: &Cluster,
    departed: &mut HashMap<i32, Instant>,
    grace: Duration,
) -> HashSet<i32> {
    let live: HashSet<i32> = cluster.live_brokers().iter().map(|b| b.id).collect();
    let leaders: HashSet<i32> = cluster.leaders().values().map(|l| l.broker).collect();
    departed.retain(|b, _| !live.contains(b) && leaders.contains(b));
    for gone in leaders.difference(&live) {
        departed.entry(*gone).or_insert_with(|| {
            if !grace.is_zero() {
                tracing::warn!(
                    broker = gone,
                    grace_ms = grace.as_millis() as u64,
                    "a leader is gone: its partitions wait for it"
                );
            }
            Instant::now()
        });
    }
    departed
        .iter()
        .filter(|(_, since)| since.elapsed() < grace)
        .map(|(b, _)| *b)
        .collect()
}

/// One round: plans from the mirrors (and the assignments they do not
/// show yet) and applies the plan.
async fn assign(
    cluster: &Cluster,
    meta: &dyn MetaStore,
    assigned: &mut HashMap<PartitionId, PartitionLeader>,
    waiting: &HashSet<i32>,
    balancing_moves: usize,
) {
    let brokers: Vec<i32> = cluster.live_brokers().iter().map(|b| b.id).collect();
    let partitions: Vec<PartitionId> = cluster
        .topics()
        .iter()
        .flat_map(|t| (0..t.partitions).map(move |p| (t.id, p)))
        .collect();
    let mut leaders = cluster.leaders();
    let existing: HashSet<&PartitionId> = partitions.iter().collect();
    assigned.retain(|partition, mine| {
        existing.contains(partition)
            && leaders
                .get(partition)
                .is_none_or(|seen| seen.epoch < mine.epoch)
    });
    for (partition, mine) in assigned.iter() {
        leaders.insert(*partition, *mine);
    }
    let current = leaders.iter().map(|(p, l)| (*p, l.broker)).collect();
    let moves = plan(
        &brokers,
        &partitions,
        &current,
        &cluster.pins(),
        waiting,
        balancing_moves,
    );
    if moves.is_empty() {
        return;
    }
    tracing::info!(moves = moves.len(), "assigning partition leaders");
    let results = futures::stream::iter(moves)
        .map(|((topic, partition), broker)| async move {
            let result = meta.assign_leader(topic, partition, broker).await;
            ((topic, partition), broker, result)
        })
        .buffer_unordered(ASSIGN_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for (partition, broker, result) in results {
        match result {
            Ok(epoch) => {
                assigned.insert(partition, PartitionLeader { broker, epoch });
            }
            Err(e) => {
                tracing::warn!(topic = %partition.0, partition = partition.1, error = %e, "cannot assign a leader")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(count: i32) -> Vec<PartitionId> {
        let topic = Uuid::from_u128(7);
        (0..count).map(|p| (topic, p)).collect()
    }

    /// [`plan`] with nothing pinned and no leader waited for.
    fn plan_plain(
        brokers: &[i32],
        all: &[PartitionId],
        leaders: &HashMap<PartitionId, i32>,
        balancing_moves: usize,
    ) -> Vec<(PartitionId, i32)> {
        plan(
            brokers,
            all,
            leaders,
            &HashMap::new(),
            &HashSet::new(),
            balancing_moves,
        )
    }

    /// The leaders `brokers` get from nothing.
    fn assigned(brokers: &[i32], all: &[PartitionId]) -> HashMap<PartitionId, i32> {
        plan_plain(brokers, all, &HashMap::new(), 0)
            .into_iter()
            .collect()
    }

    fn apply(leaders: &mut HashMap<PartitionId, i32>, moves: &[(PartitionId, i32)]) {
        leaders.extend(moves.iter().copied());
    }

    fn loads(leaders: &HashMap<PartitionId, i32>) -> BTreeMap<i32, usize> {
        let mut loads = BTreeMap::new();
        for broker in leaders.values() {
            *loads.entry(*broker).or_default() += 1;
        }
        loads
    }

    #[test]
    fn every_partition_gets_a_leader_evenly_at_once() {
        let all = partitions(10);
        let moves = plan_plain(&[1, 2, 3], &all, &HashMap::new(), 0);
        assert_eq!(moves.len(), 10);
        let mut leaders = HashMap::new();
        apply(&mut leaders, &moves);
        assert_eq!(loads(&leaders), BTreeMap::from([(1, 4), (2, 3), (3, 3)]));
        assert!(
            plan_plain(&[1, 2, 3], &all, &leaders, MOVES_PER_ROUND).is_empty(),
            "stable"
        );
    }

    #[test]
    fn a_dead_brokers_partitions_move_at_once_to_the_others() {
        let all = partitions(9);
        let mut leaders = assigned(&[1, 2, 3], &all);
        let moves = plan_plain(&[1, 3], &all, &leaders, 0);
        assert_eq!(moves.len(), 3, "only broker 2's partitions move");
        assert!(moves.iter().all(|(p, _)| leaders[p] == 2));
        apply(&mut leaders, &moves);
        let spread = loads(&leaders);
        assert!(spread[&1].abs_diff(spread[&3]) <= 1, "{spread:?}");
    }

    #[test]
    fn a_joining_broker_takes_partitions_a_few_per_round() {
        let all = partitions(60);
        let mut leaders = assigned(&[1, 2], &all);
        let mut rounds = 0;
        loop {
            let moves = plan_plain(&[1, 2, 3], &all, &leaders, MOVES_PER_ROUND);
            if moves.is_empty() {
                break;
            }
            assert!(moves.len() <= MOVES_PER_ROUND);
            assert!(moves.iter().all(|(_, to)| *to == 3), "{moves:?}");
            apply(&mut leaders, &moves);
            rounds += 1;
        }
        assert_eq!(rounds, 20 / MOVES_PER_ROUND + 1);
        assert_eq!(loads(&leaders), BTreeMap::from([(1, 20), (2, 20), (3, 20)]));
    }

    #[test]
    fn pinned_partitions_go_to_their_broker_and_stay_there() {
        let all = partitions(4);
        let mut leaders = assigned(&[1, 2], &all);
        let pins: HashMap<PartitionId, i32> = all.iter().map(|p| (*p, 1)).collect();
        let none = HashSet::new();
        let moves = plan(&[1, 2], &all, &leaders, &pins, &none, 0);
        assert_eq!(moves.len(), 2, "broker 2's partitions move to 1 at once");
        apply(&mut leaders, &moves);
        assert!(
            plan(&[1, 2], &all, &leaders, &pins, &none, MOVES_PER_ROUND).is_empty(),
            "no balancing"
        );
        // Broker 1 gone: its pins do not hold; back when it returns.
        let moves = plan(&[2], &all, &leaders, &pins, &none, 0);
        assert_eq!(moves.len(), 4);
        apply(&mut leaders, &moves);
        assert_eq!(plan(&[1, 2], &all, &leaders, &pins, &none, 0).len(), 4);
    }

    #[test]
    fn a_waiting_leaders_partitions_stay_until_its_grace_ends() {
        let all = partitions(6);
        let leaders = assigned(&[1, 2], &all);
        let none = HashMap::new();
        let waiting = HashSet::from([2]);
        assert!(plan(&[1], &all, &leaders, &none, &waiting, MOVES_PER_ROUND).is_empty());
        let moves = plan_plain(&[1], &all, &leaders, 0);
        assert_eq!(moves.len(), 3, "moved once the grace ended");
    }

    #[test]
    fn without_brokers_nothing_is_assigned() {
        assert!(plan_plain(&[], &partitions(3), &HashMap::new(), 8).is_empty());
    }
}
