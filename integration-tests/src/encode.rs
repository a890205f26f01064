//! Producer-side encoding for tests: Protobuf from JSON through a `.proto`, Avro datums, and
//! the Confluent wire framing.

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};

/// Compiles `.proto` source text (imports of `google/protobuf/*` allowed).
pub fn proto_message(source: &str, message: &str) -> MessageDescriptor {
    let pool: DescriptorPool = compile(source).descriptor_pool();
    pool.get_message_by_name(message).expect("message exists")
}

/// The compiled descriptor set of `.proto` source text, as `protoc --include_imports -o` writes it.
pub fn proto_descriptor_set(source: &str) -> Vec<u8> {
    compile(source).encode_file_descriptor_set()
}

fn compile(source: &str) -> protox::Compiler {
    let file = protox::file::File::from_source("test.proto", source).expect("proto parses");
    struct One(protox::file::File);
    impl protox::file::FileResolver for One {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            if name == "test.proto" { Ok(self.0.clone()) } else { Err(protox::Error::file_not_found(name)) }
        }
    }
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(One(file));
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler.open_file("test.proto").expect("proto compiles");
    compiler
}

/// Encodes a message given as Protobuf JSON.
pub fn proto_encode(message: &MessageDescriptor, json: &serde_json::Value) -> Vec<u8> {
    DynamicMessage::deserialize(message.clone(), json).expect("json fits the message").encode_to_vec()
}

/// Encodes an Avro datum (no container, no framing).
pub fn avro_encode(schema: &str, value: apache_avro::types::Value) -> Vec<u8> {
    let schema = apache_avro::Schema::parse_str(schema).expect("avro schema");
    let resolved = value.resolve(&schema).expect("value fits the schema");
    apache_avro::to_avro_datum(&schema, resolved).expect("encodes")
}

/// Confluent framing: magic byte 0, schema id, Protobuf message indexes (if any), payload.
pub fn confluent(id: u32, protobuf_indexes: Option<&[i64]>, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&id.to_be_bytes());
    if let Some(indexes) = protobuf_indexes {
        if indexes == [0] {
            out.push(0);
        } else {
            zigzag(indexes.len() as i64, &mut out);
            for i in indexes {
                zigzag(*i, &mut out);
            }
        }
    }
    out.extend_from_slice(payload);
    out
}

fn zigzag(n: i64, out: &mut Vec<u8>) {
    let mut v = ((n << 1) ^ (n >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
