//! A plain Kafka client for one-off questions to the brokers (`validate`, `offsets`): metadata,
//! watermarks, offsets by time, a group's members. It connects exactly as the pipelines do
//! (`kafka.brokers`, `kafka.properties`, MSK IAM) but has no `group.id`: a consumer handle with
//! one takes part in its group's coordination (and, dropped, left the test broker's group
//! unable to rebalance), while listing a group's members needs none.

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::BaseConsumer;

use super::msk_iam::TokenContext;
use crate::config::KafkaConfig;
use crate::{Error, Result};

/// A consumer that is only asked questions.
pub fn query_client(kafka: &KafkaConfig) -> Result<BaseConsumer<TokenContext>> {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &kafka.brokers).set_log_level(RDKafkaLogLevel::Warning);
    for (k, v) in &kafka.client_properties() {
        client.set(k, v);
    }
    let context = TokenContext::new(kafka.msk_iam.as_ref());
    client.create_with_context(context).map_err(Error::kafka("create a client from kafka.properties"))
}
