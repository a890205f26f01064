//! A minimal HTTP/1.1 GET for the writer's `/metrics`, `/healthz` and `/readyz`, and reading
//! one sample out of the Prometheus text.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `GET path` on 127.0.0.1:`port`: `(status, body)`, or `None` if nothing answers.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    request(port, "GET", path, None)
}

/// Any request, with an optional JSON body.
pub fn request(port: u16, method: &str, path: &str, body: Option<&str>) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// Polls `path` until `accept(status, body)` holds; panics with the last answer after `within`.
pub fn wait_for(port: u16, path: &str, within: Duration, accept: impl Fn(u16, &str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let answer = get(port, path);
        if let Some((status, body)) = &answer
            && accept(*status, body)
        {
            return body.clone();
        }
        assert!(Instant::now() < deadline, "GET {path} never gave what the test waits for; last answer: {answer:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The sum of every sample of `name` whose labels contain all of `labels` (`key="value"` each).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
        if series_name != name || !labels.iter().all(|l| series_labels.contains(l)) {
            continue;
        }
        if let Ok(v) = value.parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}
