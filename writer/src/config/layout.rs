//! What a pipeline's config says a new table looks like: its declared schema (from `schema`,
//! `schema_file` or a source schema) plus metadata columns, partitioning, sort order and
//! properties, checked before anything is created.

use std::collections::BTreeMap;

use iceberg::spec::Schema;
use icefall_schemas::declare::{FieldDecl, schema_from_decls};
use icefall_schemas::evolve::{SourceField, create_schema};
use icefall_table::create::TableLayout;
use serde::Deserialize;

use super::PipelineConfig;
use crate::{Error, Result};

impl PipelineConfig {
    /// The declared schema, plus the metadata columns it does not declare itself.
    pub fn declared_schema(&self) -> Result<Schema> {
        let mut fields = self.declared_fields()?;
        for decl in self.metadata_decls() {
            if !fields.iter().any(|f| f.name == decl.name) {
                fields.push(decl);
            }
        }
        schema_from_decls(&fields).map_err(|e| Error::Config(format!("pipelines[{}].schema: {e}", self.name)))
    }

    /// The columns as declared (`schema` or `schema_file`).
    fn declared_fields(&self) -> Result<Vec<FieldDecl>> {
        let at = format!("pipelines[{}]", self.name);
        if let Some(path) = &self.schema_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("{at}.schema_file: cannot read {}: {e}", path.display())))?;
            if path.extension().is_some_and(|e| e == "json") {
                let document: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| Error::Config(format!("{at}.schema_file {}: not JSON: {e}", path.display())))?;
                if document.get("properties").is_some() {
                    return icefall_schemas::json_schema::decls_from_json_schema(&document)
                        .map_err(|e| Error::Config(format!("{at}.schema_file {} (JSON Schema): {e}", path.display())));
                }
                let schema = serde_json::from_value::<Schema>(document).map_err(|e| {
                    Error::Config(format!("{at}.schema_file {}: not an Iceberg schema: {e}", path.display()))
                })?;
                return Ok(schema
                    .as_struct()
                    .fields()
                    .iter()
                    .map(|f| FieldDecl {
                        name: f.name.clone(),
                        type_name: type_text(&f.field_type),
                        required: f.required,
                        doc: f.doc.clone(),
                    })
                    .collect());
            }
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct SchemaFile {
                fields: Vec<FieldDecl>,
            }
            let file: SchemaFile = toml::from_str(&text)
                .map_err(|e| Error::Config(format!("{at}.schema_file {}: {e}", path.display())))?;
            return Ok(file.fields);
        }
        Ok(self.schema.clone())
    }

    /// The metadata columns as declared fields.
    fn metadata_decls(&self) -> Vec<FieldDecl> {
        self.metadata_columns
            .mapping()
            .into_iter()
            .map(|(name, field)| FieldDecl {
                name,
                type_name: field.default_type().into(),
                required: false,
                doc: Some(format!("Kafka {field:?}")),
            })
            .collect()
    }

    /// Schema, partitioning and properties of a new JSON table (declared columns).
    pub fn layout(&self) -> Result<TableLayout> {
        self.checked_layout(self.declared_schema()?, BTreeMap::new())
    }

    /// Schema, partitioning and properties of a new table whose columns come from a source
    /// schema (Protobuf, Avro). Creating a table assigns fresh field ids, so the source-field →
    /// field-id mapping is recorded right after creation, by the first evolution check.
    pub fn source_layout(&self, source: &[SourceField]) -> Result<TableLayout> {
        let at = format!("pipelines[{}]", self.name);
        let metadata = self.metadata_decls();
        let extra = if metadata.is_empty() {
            Vec::new()
        } else {
            schema_from_decls(&metadata)
                .map_err(|e| Error::Config(format!("{at}.metadata_columns: {e}")))?
                .as_struct()
                .fields()
                .to_vec()
        };
        let (schema, _) = create_schema(source, &extra)
            .map_err(|e| Error::Config(format!("{at}: the source schema cannot be a table: {e}")))?;
        self.checked_layout(schema, BTreeMap::new())
    }

    fn checked_layout(&self, schema: Schema, extra_properties: BTreeMap<String, String>) -> Result<TableLayout> {
        let mut properties = self.table_properties.clone();
        properties.extend(extra_properties);
        if let Some(format) = self.file_format {
            properties.insert("write.format.default".into(), format.name().into());
        }
        let at = format!("pipelines[{}]", self.name);
        let props: std::collections::HashMap<String, String> = properties.clone().into_iter().collect();
        let format = icefall_table::files::format::table_format(&props)
            .map_err(|e| Error::Config(format!("{at}.table_properties: {e}")))?;
        icefall_table::files::format::check_columns(format, &schema)
            .map_err(|e| Error::Config(format!("{at}.file_format: {e}")))?;
        let layout = TableLayout {
            schema,
            partition: self.partition.clone(),
            properties: properties.into_iter().collect(),
            sort_order: self.sort_order.clone(),
        };
        layout.partition_spec().map_err(|e| Error::Config(format!("pipelines[{}].partition: {e}", self.name)))?;
        layout.sort().map_err(|e| Error::Config(format!("pipelines[{}].sort_order: {e}", self.name)))?;
        Ok(layout)
    }
}

/// An Iceberg type written the way `schema` declarations write it (nested fields optional
/// unless `not null`).
fn type_text(ty: &iceberg::spec::Type) -> String {
    use iceberg::spec::Type;
    match ty {
        Type::Primitive(p) => p.to_string(),
        Type::List(l) => format!("list<{}>", type_text(&l.element_field.field_type)),
        Type::Map(m) => {
            format!("map<{}, {}>", type_text(&m.key_field.field_type), type_text(&m.value_field.field_type))
        }
        Type::Struct(st) => {
            let fields: Vec<String> = st
                .fields()
                .iter()
                .map(|f| {
                    format!("{}: {}{}", f.name, type_text(&f.field_type), if f.required { " not null" } else { "" })
                })
                .collect();
            format!("struct<{}>", fields.join(", "))
        }
    }
}
