//! A small Confluent-API-compatible schema registry for tests: `GET /subjects`,
//! `GET /schemas/ids/{id}`, `GET /subjects/{subject}/versions/latest`, `POST /subjects/{subject}/versions`. Tests
//! register schemas directly through [`TestRegistry::register`] as well.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct State {
    /// id → (schema type, schema text)
    schemas: BTreeMap<u32, (String, String)>,
    /// subject → ids in version order
    subjects: BTreeMap<String, Vec<u32>>,
    /// requests served, for assertions on caching
    requests: u64,
    /// `Authorization` header value every request must carry, if any.
    authorization: Option<String>,
}

pub struct TestRegistry {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        Self::start_with(None)
    }

    /// A registry that answers 401 unless a request carries basic auth `user:password`.
    pub fn start_with_basic_auth(user: &str, password: &str) -> TestRegistry {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self::start_with(Some(format!("Basic {token}")))
    }

    fn start_with(authorization: Option<String>) -> TestRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind registry");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State { authorization, ..State::default() }));
        let served = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = served.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        TestRegistry { url, state }
    }

    /// Registers a schema under `subject` (`AVRO` or `PROTOBUF`); returns its id (the same
    /// text under the same type gets the same id, as in the real registry).
    pub fn register(&self, subject: &str, schema_type: &str, schema: &str) -> u32 {
        register_in(&mut self.state.lock().expect("registry state"), subject, schema_type, schema)
    }

    pub fn requests(&self) -> u64 {
        self.state.lock().expect("registry state").requests
    }
}

fn register_in(state: &mut State, subject: &str, schema_type: &str, schema: &str) -> u32 {
    let existing = state.schemas.iter().find(|(_, (t, s))| t == schema_type && s == schema).map(|(id, _)| *id);
    let id = existing.unwrap_or_else(|| {
        let id = 100 + state.schemas.len() as u32;
        state.schemas.insert(id, (schema_type.to_string(), schema.to_string()));
        id
    });
    let versions = state.subjects.entry(subject.to_string()).or_default();
    if !versions.contains(&id) {
        versions.push(id);
    }
    id
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0usize;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_string());
        }
    }
    let mut body = vec![0u8; content_length];
    let _ = reader.read_exact(&mut body);
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let required = state.lock().expect("registry state").authorization.clone();
    let (status, answer) = if required.is_some() && required != authorization {
        ("401 Unauthorized", serde_json::json!({ "error_code": 40101, "message": "Unauthorized" }))
    } else {
        route(method, path, &body, state)
    };
    let text = answer.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
}

fn schema_json(id: u32, schema_type: &str, schema: &str) -> serde_json::Value {
    let mut answer = serde_json::json!({ "id": id, "schema": schema });
    if schema_type != "AVRO" {
        answer["schemaType"] = schema_type.into(); // the registry omits the default type
    }
    answer
}

fn route(method: &str, path: &str, body: &[u8], state: &Mutex<State>) -> (&'static str, serde_json::Value) {
    let not_found = ("404 Not Found", serde_json::json!({ "error_code": 40403, "message": "Schema not found" }));
    let mut guard = state.lock().expect("registry state");
    guard.requests += 1;
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["subjects"]) => ("200 OK", serde_json::json!(guard.subjects.keys().collect::<Vec<_>>())),
        ("GET", ["schemas", "ids", id]) => {
            match id.parse::<u32>().ok().and_then(|id| guard.schemas.get(&id).map(|s| (id, s))) {
                Some((id, (t, s))) => ("200 OK", schema_json(id, t, s)),
                None => not_found,
            }
        }
        ("GET", ["subjects", subject, "versions", "latest"]) => {
            let Some(&id) = guard.subjects.get(*subject).and_then(|v| v.last()) else { return not_found };
            let (t, s) = guard.schemas[&id].clone();
            let version = guard.subjects[*subject].len();
            let mut answer = schema_json(id, &t, &s);
            answer["subject"] = (*subject).into();
            answer["version"] = version.into();
            ("200 OK", answer)
        }
        ("POST", ["subjects", subject, "versions"]) => {
            let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
                return ("422 Unprocessable Entity", serde_json::json!({ "error_code": 42201, "message": "bad body" }));
            };
            let schema_type = request["schemaType"].as_str().unwrap_or("AVRO");
            let id = register_in(&mut guard, subject, schema_type, request["schema"].as_str().unwrap_or_default());
            ("200 OK", serde_json::json!({ "id": id }))
        }
        _ => not_found,
    }
}
