//! Routing many topics to many tables: a pipeline whose `table` holds `{topic}` stands for one
//! pipeline per topic (its listed `topics`, or every topic `topics_regex` matches, new ones
//! included), each with its own table, consumer group, offsets, fencing and dead-letter table.
//! A pipeline with `route_field` and `routes` stands for one pipeline per route: each reads the
//! same topics and keeps the records whose field value its pattern matches (the others count as
//! read for its table), so each table holds each of its records exactly once on its own.

use regex::Regex;
use serde::Deserialize;

use super::PipelineConfig;
use crate::{Error, Result};

/// Which records one route's pipeline keeps.
#[derive(Debug, Clone)]
pub struct RouteFilter {
    /// The top-level JSON field whose value decides.
    pub field: String,
    /// Matches the whole value (a string as it is, a number or boolean as JSON writes it).
    pub pattern: Regex,
}

impl RouteFilter {
    /// True when `payload`'s field matches. A record without the field (or not a JSON object)
    /// goes to no route.
    pub fn keeps(&self, payload: Option<&[u8]>) -> bool {
        payload
            .and_then(|p| icefall_schemas::json::infer::field_text(p, &self.field))
            .is_some_and(|value| self.pattern.is_match(&value))
    }
}

/// A regular expression that must match a whole name or value.
fn anchored(pattern: &str, key: &str) -> Result<Regex> {
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| Error::Config(format!("{key} = {pattern:?} is not a regular expression: {e}")))
}

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
        anchored(pattern, &format!("pipelines[{}].topics_regex", self.name)).map(Some)
    }

    /// The pipeline of one route: its table, its own name (`<name>.<table name>`), consumer
    /// group and dead-letter table, and the filter that keeps its records.
    fn for_route(&self, field: &str, table: &str, pattern: &str) -> Result<PipelineConfig> {
        let table_name = table_name_of(table);
        let pattern = anchored(pattern, &format!("pipelines[{}].routes.\"{table}\"", self.name))?;
        Ok(PipelineConfig {
            name: format!("{}.{table_name}", self.name),
            table: table.to_string(),
            route_field: None,
            routes: Default::default(),
            route: Some(RouteFilter { field: field.to_string(), pattern }),
            group_id: self.group_id.as_ref().map(|g| format!("{g}.{table_name}")),
            dead_letter_table: None,
            ..self.clone()
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
        if let Some(field) = &self.route_field {
            return self.routes.iter().map(|(table, pattern)| self.for_route(field, table, pattern)).collect();
        }
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
        match (&self.route_field, self.routes.is_empty()) {
            (Some(_), true) => {
                return Err(Error::Config(format!(
                    "{at}.routes: route_field needs routes, e.g. routes = {{ \"web.clicks\" = \"click|tap\" }} \
                     (table = a pattern of the field's values)"
                )));
            }
            (None, false) => return Err(Error::Config(format!("{at}.routes: set route_field, the field they match"))),
            (Some(_), false) if !self.table.is_empty() || self.topics_regex.is_some() => {
                return Err(Error::Config(format!(
                    "{at}: with route_field the tables are the routes' keys: leave out `table` and `topics_regex`"
                )));
            }
            (Some(field), false) => {
                for (table, pattern) in &self.routes {
                    icefall_table::catalog::parse_ident(table)
                        .map_err(|e| Error::Config(format!("{at}.routes.\"{table}\": {e}")))?;
                    self.for_route(field, table, pattern)?;
                }
            }
            (None, true) if self.table.trim().is_empty() => {
                return Err(Error::Config(format!("{at}.table: name the target table (or route by a field)")));
            }
            (None, true) => {}
        }
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
        assert!(err("topics = [\"a\"]\nroute_field = \"kind\"").contains("route_field needs routes"));
        assert!(err("topics = [\"a\"]\ntable = \"ns.t\"\nroutes = { \"ns.a\" = \"x\" }").contains("set route_field"));
        assert!(
            err("topics = [\"a\"]\ntable = \"ns.t\"\nroute_field = \"k\"\nroutes = { \"ns.a\" = \"x\" }")
                .contains("leave out `table`")
        );
        assert!(
            err("topics = [\"a\"]\nroute_field = \"k\"\nroutes = { \"ns.a\" = \"x(\" }").contains("routes.\"ns.a\"")
        );
    }

    #[test]
    fn each_route_is_a_pipeline_that_keeps_its_values() {
        let p = pipeline("topics = [\"events\"]\nroute_field = \"kind\"\nroutes = { \"web.clicks\" = \"click|tap\", \"web.views\" = \"view\" }")
            .expect("valid");
        let routes = p.resolve(&[]).expect("routes");
        let names: Vec<(&str, &str)> = routes.iter().map(|r| (r.name.as_str(), r.table.as_str())).collect();
        assert_eq!(names, [("raw.web_clicks", "web.clicks"), ("raw.web_views", "web.views")]);
        let clicks = routes[0].route.as_ref().expect("a filter");
        assert!(clicks.keeps(Some(br#"{"kind": "tap"}"#)));
        assert!(!clicks.keeps(Some(br#"{"kind": "tapped"}"#)), "whole values only");
        assert!(!clicks.keeps(Some(br#"{"id": 1}"#)) && !clicks.keeps(None));
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
