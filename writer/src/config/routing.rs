//! Routing many topics to many tables: a pipeline whose `table` holds `{topic}` stands for one
//! pipeline per topic (its listed `topics`, or every topic `topics_regex` matches, new ones
//! included), each with its own table, consumer group, offsets, fencing and dead-letter table.

use regex::Regex;
use serde::Deserialize;

use super::PipelineConfig;
use crate::{Error, Result};

/// The placeholder a table template names the topic with.
pub const TOPIC_PLACEHOLDER: &str = "{topic}";

/// What happens to a record that cannot be decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeadLetterPolicy {
    /// Committed to the dead-letter table with the reason, key, value and headers.
    #[default]
    Table,
    /// Counted (`icefall_dead_letter_records_total`) and logged, not kept.
    Drop,
    /// The pipeline stops before committing it, naming the record; nothing after it is
    /// committed until the producer or the config is fixed.
    Fail,
}

/// A topic name as a table name: lowercase ASCII letters, digits and `_`; every other
/// character (`.`, `-`, non-ASCII) becomes `_`, and a leading digit gets a `t_` prefix, so the
/// name needs no quoting in Spark or Trino.
pub fn table_name_of(topic: &str) -> String {
    let name: String =
        topic.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) { format!("t_{name}") } else { name }
}

impl PipelineConfig {
    /// True when `table` is a template: one pipeline (and table) per topic.
    pub fn routes_per_topic(&self) -> bool {
        self.table.contains(TOPIC_PLACEHOLDER)
    }

    /// The compiled `topics_regex`, anchored at both ends (Kafka Connect's `topics.regex`).
    pub fn topics_pattern(&self) -> Result<Option<Regex>> {
        let Some(pattern) = &self.topics_regex else { return Ok(None) };
        Regex::new(&format!("^(?:{pattern})$")).map(Some).map_err(|e| {
            Error::Config(format!(
                "pipelines[{}].topics_regex = {pattern:?} is not a regular expression: {e}",
                self.name
            ))
        })
    }

    /// The concrete pipeline of one topic of a routing pipeline: its table from the template,
    /// its own name (`<name>.<table name>`, in metrics and logs), consumer group and dead-letter
    /// table.
    pub fn for_topic(&self, topic: &str) -> PipelineConfig {
        let table_name = table_name_of(topic);
        let group_id = self.group_id.as_ref().map(|g| format!("{g}.{table_name}"));
        PipelineConfig {
            name: format!("{}.{table_name}", self.name),
            topics: vec![topic.to_string()],
            topics_regex: None,
            table: self.table.replace(TOPIC_PLACEHOLDER, &table_name),
            dead_letter_table: self.dead_letter_table.as_ref().map(|t| t.replace(TOPIC_PLACEHOLDER, &table_name)),
            group_id,
            ..self.clone()
        }
    }

    /// This pipeline's concrete pipelines given the topics the brokers have: itself, one per
    /// listed topic, or one per matching topic (internal `__` topics never match).
    pub fn resolve(&self, broker_topics: &[String]) -> Result<Vec<PipelineConfig>> {
        if let Some(pattern) = self.topics_pattern()? {
            let mut topics: Vec<&String> =
                broker_topics.iter().filter(|t| !t.starts_with("__") && pattern.is_match(t)).collect();
            topics.sort();
            topics.dedup();
            return one_table_each(topics.into_iter().map(|t| self.for_topic(t)).collect());
        }
        if self.routes_per_topic() {
            return one_table_each(self.topics.iter().map(|t| self.for_topic(t)).collect());
        }
        Ok(vec![self.clone()])
    }

    /// Checks the routing keys; `at` names the pipeline in messages.
    pub(super) fn validate_routing(&self, at: &str) -> Result<()> {
        match (&self.topics_regex, self.topics.is_empty()) {
            (Some(_), false) => {
                return Err(Error::Config(format!("{at}: set `topics` or `topics_regex`, not both")));
            }
            (Some(_), true) if !self.routes_per_topic() => {
                return Err(Error::Config(format!(
                    "{at}.table = {:?}: with topics_regex the table must name each topic's table with {TOPIC_PLACEHOLDER} \
                     (e.g. \"raw.{TOPIC_PLACEHOLDER}\"); to land several topics in one table, list them in `topics`",
                    self.table
                )));
            }
            (Some(_), true) => {
                self.topics_pattern()?;
            }
            (None, _) if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) => {
                return Err(Error::Config(format!(
                    "{at}.topics: list at least one topic, none empty (or match them with topics_regex)"
                )));
            }
            (None, _) => {}
        }
        if self.routes_per_topic() && self.table.matches(TOPIC_PLACEHOLDER).count() > 1 {
            return Err(Error::Config(format!("{at}.table: name {TOPIC_PLACEHOLDER} once")));
        }
        Ok(())
    }
}

/// Two topics whose names become the same table name (`a.b`, `a-b`) would share a table.
fn one_table_each(pipelines: Vec<PipelineConfig>) -> Result<Vec<PipelineConfig>> {
    for (i, p) in pipelines.iter().enumerate() {
        if let Some(other) = pipelines[..i].iter().find(|o| o.table == p.table) {
            return Err(Error::Config(format!(
                "topics {:?} and {:?} both become table {}: rename one topic, or route them with two pipelines",
                other.topics[0], p.topics[0], p.table
            )));
        }
    }
    Ok(pipelines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(keys: &str) -> Result<PipelineConfig> {
        let text = format!(
            "[kafka]\nbrokers = \"127.0.0.1:1\"\n\n[[pipelines]]\nname = \"raw\"\n{keys}\n\
             schema = [{{ name = \"id\", type = \"long\" }}]\n"
        );
        let config = crate::config::Config::parse(&text)?;
        config.validate()?;
        Ok(config.pipelines[0].clone())
    }

    #[test]
    fn routing_keys_are_checked_at_start_up() {
        let err = |keys: &str| pipeline(keys).expect_err(keys).to_string();
        assert!(err("topics = [\"a\"]\ntopics_regex = \"a.*\"\ntable = \"ns.{topic}\"").contains("not both"));
        assert!(err("topics_regex = \"a.*\"\ntable = \"ns.t\"").contains("must name each topic's table with {topic}"));
        assert!(err("topics_regex = \"a(\"\ntable = \"ns.{topic}\"").contains("pipelines[raw].topics_regex"));
        assert!(err("table = \"ns.t\"").contains("pipelines[raw].topics"));
    }

    #[test]
    fn a_template_resolves_to_one_pipeline_per_matching_topic() {
        let p = pipeline("topics_regex = 'orders\\.[a-z]+'\ntable = \"raw.{topic}\"\ngroup_id = \"g\"").expect("valid");
        let topics: Vec<String> =
            ["orders.eu", "orders.us", "orders.eu.x", "__consumer_offsets", "other"].map(String::from).to_vec();
        let resolved = p.resolve(&topics).expect("resolves");
        let shown: Vec<(&str, &str, &str, Option<&str>)> = resolved
            .iter()
            .map(|r| (r.name.as_str(), r.topics[0].as_str(), r.table.as_str(), r.group_id.as_deref()))
            .collect();
        assert_eq!(
            shown,
            [
                ("raw.orders_eu", "orders.eu", "raw.orders_eu", Some("g.orders_eu")),
                ("raw.orders_us", "orders.us", "raw.orders_us", Some("g.orders_us")),
            ],
            "anchored at both ends"
        );
        let clash = p.resolve(&["orders.ab".to_string()]).expect("one topic");
        assert_eq!(clash.len(), 1);
        let p = pipeline("topics = [\"a.b\", \"a-b\"]\ntable = \"raw.{topic}\"").expect("valid");
        assert!(p.resolve(&[]).expect_err("clash").to_string().contains("both become table raw.a_b"));
    }

    #[test]
    fn topic_names_become_plain_table_names() {
        assert_eq!(table_name_of("Orders.v1-EU"), "orders_v1_eu");
        assert_eq!(table_name_of("7days"), "t_7days");
        assert_eq!(table_name_of("clicks/é?#%"), "clicks_____");
        assert_eq!(table_name_of("plain_name"), "plain_name");
    }
}
