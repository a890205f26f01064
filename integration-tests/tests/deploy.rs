//! The deployment files are checked, not just shipped: the Kubernetes manifests and the compose
//! file parse, carry what an operator relies on (probes on the metrics port, graceful
//! termination longer than a checkpoint, resources, a PodDisruptionBudget that selects the
//! writers, a CronJob that never overlaps, Secrets referenced rather than inlined), every file
//! they mount exists, and the writer and optimizer configs they carry pass our own validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use icefall_integration_tests::repo_root;
use serde_json::Value;

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            let value: Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
            value
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// `${NAME}` → a stand-in value, as the environment would provide at run time.
fn fill_placeholders(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("a closed ${…}");
        out.push_str(&format!("stand-in-{}", &rest[i + 2..i + end]));
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    out
}

fn writer_config(text: &str) -> icefall_writer::Config {
    let config = icefall_writer::Config::parse(&fill_placeholders(text)).expect("the writer config parses");
    config.validate().expect("the writer config validates");
    config
}

fn optimizer_config(text: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("optimizer.toml");
    std::fs::write(&path, fill_placeholders(text)).expect("write");
    icefall_optimizer::Config::load(&path).expect("the optimizer config loads and validates");
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{pointer} missing in {value}"))
}

#[test]
fn kubernetes_manifests_carry_what_operators_rely_on() {
    let dir = repo_root().join("deploy/k8s");
    let kustomization = &yaml_documents(&dir.join("kustomization.yaml"))[0];
    let listed: Vec<PathBuf> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| dir.join(r.as_str().expect("a file name")))
        .collect();
    let mut manifests = Vec::new();
    for path in listed.iter().chain([&dir.join("secret.example.yaml")]) {
        for doc in yaml_documents(path) {
            for key in ["/apiVersion", "/kind", "/metadata/name"] {
                str_at(&doc, key);
            }
            manifests.push(doc);
        }
    }
    let find = |kind: &str, name: &str| {
        manifests
            .iter()
            .find(|m| m["kind"] == kind && m["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    // ConfigMaps come from the generator: name → (file name → content).
    let generated: BTreeMap<String, BTreeMap<String, String>> = kustomization["configMapGenerator"]
        .as_array()
        .expect("configMapGenerator: configs are generated, so a change rolls the pods")
        .iter()
        .map(|g| {
            let files = g["files"].as_array().expect("files").iter().map(|f| {
                let entry = f.as_str().expect("a file");
                let (key, file) = entry.split_once('=').unwrap_or((entry, entry));
                let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
                (key.to_string(), text)
            });
            (str_at(g, "/name").to_string(), files.collect())
        })
        .collect();
    assert!(manifests.iter().all(|m| m["kind"] != "ConfigMap"), "ConfigMaps are generated, not written out");
    let secret = find("Secret", "icefall-secrets");

    // The writer: its config, probes on its metrics port, termination longer than a checkpoint.
    let deployment = find("Deployment", "icefall-writer");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let config_map = pod["volumes"].as_array().expect("volumes").iter().find_map(|v| v["configMap"]["name"].as_str());
    let config_map = config_map.expect("the config comes from a ConfigMap");
    let config = writer_config(&generated[config_map]["writer.toml"]);
    let listen = config.metrics.listen.expect("the writer serves metrics in Kubernetes");
    assert_eq!(listen.ip().to_string(), "0.0.0.0", "probes come from outside the pod");
    let port = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "metrics")
        .and_then(|p| p["containerPort"].as_u64())
        .expect("a metrics port");
    assert_eq!(port, u64::from(listen.port()), "the container port is the one the config listens on");
    assert_eq!(str_at(container, "/livenessProbe/httpGet/path"), "/healthz");
    assert_eq!(str_at(container, "/readinessProbe/httpGet/path"), "/readyz");
    assert_eq!(str_at(container, "/readinessProbe/httpGet/port"), "metrics");
    let grace = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().expect("a termination grace period"));
    let longest = config.pipelines.iter().map(|p| p.checkpoint_interval).max().expect("pipelines");
    assert!(
        grace > longest + Duration::from_secs(30),
        "{grace:?} leaves no time for a final checkpoint of {longest:?}"
    );
    for key in ["/resources/requests/cpu", "/resources/requests/memory", "/resources/limits/memory"] {
        str_at(container, key);
    }
    // Secrets are referenced, never inlined, and every referenced key exists.
    let mut referenced = 0;
    for env in container["env"].as_array().expect("env") {
        if let Some(reference) = env.pointer("/valueFrom/secretKeyRef") {
            assert_eq!(reference["name"], "icefall-secrets");
            let key = str_at(reference, "/key");
            assert!(secret["stringData"].get(key).is_some(), "secret key {key} is not in secret.example.yaml");
            referenced += 1;
        }
        assert!(env.get("value").is_none_or(|v| !v.as_str().unwrap_or("").contains("change-me")));
    }
    assert!(referenced >= 3, "catalog and storage credentials come from the Secret");

    // Disruptions take one writer at a time, and the budget selects the writers.
    let pdb = find("PodDisruptionBudget", "icefall-writer");
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], deployment["spec"]["selector"]["matchLabels"]);
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"]);
    assert!(pdb["spec"].get("maxUnavailable").is_some() || pdb["spec"].get("minAvailable").is_some());

    // The optimizer: a CronJob that never overlaps, with a config that loads.
    let cron = find("CronJob", "icefall-optimizer");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    str_at(cron, "/spec/schedule");
    let job_pod = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(job_pod["restartPolicy"], "Never");
    let optimizer_map = job_pod["volumes"][0]["configMap"]["name"].as_str().expect("optimizer ConfigMap");
    optimizer_config(&generated[optimizer_map]["optimizer.toml"]);
    str_at(&job_pod["containers"][0], "/resources/limits/memory");

    // The Service and the monitoring overlay's PodMonitor reach the writers' metrics port.
    let service = find("Service", "icefall-writer");
    assert_eq!(service["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"]);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    let overlay = dir.join("monitoring");
    let monitoring = &yaml_documents(&overlay.join("kustomization.yaml"))[0];
    assert_eq!(monitoring["resources"][0], "..", "the overlay applies everything in deploy/k8s");
    let pod_monitor = &yaml_documents(&overlay.join(str_at(monitoring, "/resources/1")))[0];
    assert_eq!(pod_monitor["kind"], "PodMonitor");
    assert_eq!(pod_monitor["spec"]["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"]);
    assert_eq!(pod_monitor["spec"]["podMetricsEndpoints"][0]["port"], "metrics");
    let push = &yaml_documents(&overlay.join(str_at(monitoring, "/patches/0/path")))[0];
    assert_eq!(push["metadata"]["name"], cron["metadata"]["name"], "the patch is the optimizer's CronJob");
    let env = &push["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"][0];
    assert_eq!(env["name"], "ICEFALL_METRICS_PUSH", "the optimizer pushes its figures");
    assert_eq!(
        push["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["name"],
        job_pod["containers"][0]["name"]
    );

    // The sharded overlay: an Indexed Job of N pods, each `compact --shard-count N`.
    let overlay = dir.join("sharded");
    let sharded = &yaml_documents(&overlay.join("kustomization.yaml"))[0];
    assert_eq!(sharded["resources"][0], "..");
    let shards = &yaml_documents(&overlay.join(str_at(sharded, "/resources/1")))[0];
    assert_eq!(shards["spec"]["concurrencyPolicy"], "Forbid");
    let job = &shards["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"], "Indexed");
    assert_eq!(job["completions"], job["parallelism"], "every shard runs at once");
    let args: Vec<&str> = job["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let count = args.iter().position(|a| *a == "--shard-count").map(|i| args[i + 1]).expect("--shard-count");
    assert_eq!(count, job["completions"].to_string(), "one shard per pod: {args:?}");
    assert_eq!(job["template"]["spec"]["volumes"][0]["configMap"]["name"], optimizer_map);
}

#[test]
fn compose_runs_the_whole_pipeline_from_files_that_exist() {
    let root = repo_root();
    let compose = &yaml_documents(&root.join("docker-compose.yml"))[0];
    let services = compose["services"].as_object().expect("services");
    for service in
        ["kafka", "schema-registry", "minio", "postgres", "spark", "trino", "writer", "optimizer", "prometheus"]
    {
        assert!(services.contains_key(service), "docker-compose.yml has no {service}");
    }
    // Every file a service mounts is in the repository.
    for (name, service) in services {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let source = volume.as_str().and_then(|v| v.split(':').next()).unwrap_or("");
            if let Some(relative) = source.strip_prefix("./") {
                assert!(root.join(relative).exists(), "service {name} mounts {source}, which does not exist");
            }
        }
    }
    assert_eq!(services["writer"]["build"], ".", "the writer image is built from the Dockerfile");
    let writer = writer_config(&std::fs::read_to_string(root.join("deploy/compose/writer.toml")).expect("read"));
    assert!(writer.catalog.warehouse.starts_with("s3://"), "the compose tables live on MinIO");
    assert!(writer.catalog.uri.starts_with("postgres://"), "Spark and Trino share the JDBC catalog");
    optimizer_config(&std::fs::read_to_string(root.join("deploy/compose/optimizer.toml")).expect("read"));
    // Prometheus scrapes the port the writer listens on, and its alerts parse.
    let prometheus = &yaml_documents(&root.join("deploy/prometheus/prometheus.yml"))[0];
    let target = str_at(prometheus, "/scrape_configs/0/static_configs/0/targets/0");
    let port = writer.metrics.listen.expect("metrics").port();
    assert_eq!(target, format!("writer:{port}"));
    let alerts = &yaml_documents(&root.join("deploy/prometheus/alerts.yml"))[0];
    let rules = alerts["groups"][0]["rules"].as_array().expect("rules");
    assert!(
        rules.iter().all(|r| r["alert"].is_string()
            && r["expr"].as_str().is_some_and(|e| e.contains("icefall_") || e.contains("up{")))
    );
    // Every metric an alert watches is one the writer serves (the guide's metrics table, which a
    // unit test keeps equal to the registry).
    let guide = std::fs::read_to_string(root.join("docs/operations.md")).expect("operations.md");
    let table = guide.split("| metric | type | what it tells you |").nth(1).expect("metrics table");
    let table = table.split("\n\n").next().unwrap_or_default();
    for rule in rules {
        let expr = rule["expr"].as_str().unwrap_or_default();
        for name in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("icefall_"))
        {
            assert!(table.contains(name), "alert {} watches {name}, which the writer does not serve", rule["alert"]);
        }
    }
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_in_a_slim_one_as_a_user() {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile");
    let stages: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(stages.len() >= 2, "multi-stage: {stages:?}");
    assert!(stages.last().is_some_and(|s| s.contains("slim")), "a small runtime image: {stages:?}");
    let runtime = &text[text.rfind("FROM ").unwrap_or(0)..];
    for binary in ["icefall-writer", "icefall-optimizer"] {
        assert!(runtime.contains(&format!("target/release/{binary}")), "the runtime image has {binary}");
    }
    assert!(runtime.lines().any(|l| l.starts_with("USER ") && !l.contains("root")), "runs as a non-root user");
    assert!(!runtime.contains("cargo "), "nothing is built in the runtime stage");
}
