//! Keeps the OpenAPI document (`components/docs/openapi.json`, served at
//! `GET /api/movies/openapi.json`) true: every route a service's router serves is in
//! it with its method, every path and method in it is served by some router, and the
//! document hangs together (path parameters declared, `$ref`s resolve, operation ids
//! unique); and no served page cites a file outside the repository. A native test:
//! `cargo test -p conformance --test openapi`.

use serde_json::Value;
use std::collections::BTreeSet;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Every `(method, path)` the project's routers serve, as OpenAPI spells them.
fn served() -> BTreeSet<(String, String)> {
    let routers = [
        hello::routes(),
        health::routes(),
        shows::routes(),
        streams::routes(),
        movies::routes(),
        docs::routes(),
        dynamodb::routes(),
        graph::routes(),
    ];
    routers
        .into_iter()
        .flatten()
        .map(|(method, path)| (method.as_str().to_ascii_lowercase(), path))
        .collect()
}

fn document() -> Value {
    let path = conformance::root().join("components/docs/openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("components/docs/openapi.json is not JSON: {e}"))
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let Some(paths) = doc["paths"].as_object() else {
        panic!("`paths` is not an object");
    };
    let mut out = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            panic!("{path}: a path item is not an object");
        };
        for (key, operation) in item {
            if METHODS.contains(&key.as_str()) {
                out.push((key.clone(), path.clone(), operation));
            }
        }
    }
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    operations(doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

fn show(set: &BTreeSet<(String, String)>) -> String {
    set.iter()
        .map(|(m, p)| format!("\n  {} {p}", m.to_ascii_uppercase()))
        .collect()
}

#[test]
fn every_served_route_is_documented_with_its_method() {
    let missing: BTreeSet<_> = served()
        .difference(&documented(&document()))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "routes served but missing from components/docs/openapi.json:{}",
        show(&missing)
    );
}

#[test]
fn every_documented_operation_is_served_by_a_router() {
    let extra: BTreeSet<_> = documented(&document())
        .difference(&served())
        .cloned()
        .collect();
    assert!(
        extra.is_empty(),
        "operations in components/docs/openapi.json that no router serves:{}",
        show(&extra)
    );
}

#[test]
fn document_is_openapi_3_1_with_the_basics() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let healthz: BTreeSet<_> = documented(&doc)
        .into_iter()
        .filter(|(_, p)| p == "/healthz")
        .collect();
    assert_eq!(healthz.len(), 1, "GET /healthz is documented");
}

#[test]
fn every_operation_has_an_id_responses_and_declares_its_path_parameters() {
    let doc = document();
    let mut ids = BTreeSet::new();
    for (method, path, operation) in operations(&doc) {
        let what = format!("{} {path}", method.to_ascii_uppercase());
        let id = operation["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{what}: no operationId");
        assert!(
            ids.insert(id.to_owned()),
            "{what}: operationId {id} is not unique"
        );
        let responses = operation["responses"].as_object();
        assert!(
            responses.is_some_and(|r| !r.is_empty()),
            "{what}: no responses"
        );
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        let declared: BTreeSet<String> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{what}: path parameters are required");
                p["name"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        assert_eq!(in_path, declared, "{what}: path parameters");
    }
}

/// Resolves a local `$ref` (`#/components/...`) in `doc`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

fn check_refs(doc: &Value, value: &Value, at: &str, seen: &mut usize) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                *seen += 1;
                assert!(
                    resolve(doc, reference).is_some(),
                    "{at}: $ref {reference} does not resolve"
                );
            }
            for (key, child) in map {
                check_refs(doc, child, &format!("{at}/{key}"), seen);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                check_refs(doc, child, &format!("{at}/{i}"), seen);
            }
        }
        _ => {}
    }
}

#[test]
fn every_ref_resolves() {
    let doc = document();
    let mut seen = 0;
    check_refs(&doc, &doc, "", &mut seen);
    assert!(seen > 10, "only {seen} $refs");
}

#[test]
fn served_pages_cite_no_file_outside_the_repository() {
    let root = conformance::root();
    let pages = [
        "components/docs/openapi.json",
        "components/docs/static/index.html",
        "components/docs/static/swagger-initializer.js",
    ];
    for page in pages {
        let text = std::fs::read_to_string(root.join(page)).unwrap();
        for outside in ["API.md", "../shared", "ARCHITECTURE.md"] {
            assert!(!text.contains(outside), "{page} cites {outside}");
        }
    }
}
