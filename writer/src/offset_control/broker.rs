//! What the broker says about a pipeline's partitions and consumer group (blocking calls: run
//! them off the async runtime).

use std::collections::BTreeMap;
use std::time::Duration;

use icefall_table::offsets::{OffsetMap, offset_of};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::plan::{PartitionKey, PartitionView};
use crate::source::msk_iam::TokenContext;
use crate::{Error, Result};

const TIMEOUT: Duration = Duration::from_secs(15);

/// Every partition of `topics` with the table's offset and the broker's log bounds.
pub fn partition_views(
    client: &BaseConsumer<TokenContext>,
    topics: &[String],
    table: &OffsetMap,
) -> Result<Vec<PartitionView>> {
    let mut views = Vec::new();
    for topic in topics {
        let metadata = client
            .fetch_metadata(Some(topic), TIMEOUT)
            .map_err(Error::kafka(format!("read the partitions of topic {topic}")))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(Error::Config(format!("topic {topic:?} does not exist on the brokers (pipelines.topics)")));
        }
        for partition in partitions {
            let (log_start, log_end) = client
                .fetch_watermarks(topic, partition, TIMEOUT)
                .map_err(Error::kafka(format!("read the log bounds of {topic}/{partition}")))?;
            let table = offset_of(table, topic, partition);
            views.push(PartitionView { topic: topic.clone(), partition, table, log_start, log_end });
        }
    }
    views.sort_by_key(PartitionView::key);
    Ok(views)
}

/// The first offset at or after `millis` for each partition (`None`: no such record yet).
pub fn offsets_at(
    client: &BaseConsumer<TokenContext>,
    views: &[PartitionView],
    millis: i64,
) -> Result<BTreeMap<PartitionKey, Option<i64>>> {
    let mut query = TopicPartitionList::new();
    for v in views {
        query
            .add_partition_offset(&v.topic, v.partition, Offset::Offset(millis))
            .map_err(Error::kafka("build the offsets-by-time request"))?;
    }
    let answer = client.offsets_for_times(query, TIMEOUT).map_err(Error::kafka("look up offsets by time"))?;
    let mut found = BTreeMap::new();
    for elem in answer.elements() {
        if let Err(e) = elem.error() {
            return Err(Error::kafka(format!("look up offsets by time for {}/{}", elem.topic(), elem.partition()))(e));
        }
        let offset = match elem.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        };
        found.insert((elem.topic().to_string(), elem.partition()), offset);
    }
    Ok(found)
}

/// The members of consumer group `group` (`client-id@host`), empty when nobody consumes.
pub fn group_members(client: &BaseConsumer<TokenContext>, group: &str) -> Result<Vec<String>> {
    let groups = client.fetch_group_list(Some(group), TIMEOUT).map_err(Error::kafka(format!(
        "ask the brokers who is in consumer group {group} (the broker must answer DescribeGroups)"
    )))?;
    Ok(groups
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members().iter().map(|m| format!("{}@{}", m.client_id(), m.client_host())))
        .collect())
}
