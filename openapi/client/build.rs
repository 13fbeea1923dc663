//! Generates the client from the committed contract, `openapi/openapi.json`, at build time:
//! a spec that cannot generate a working client fails the build.
//!
//! progenitor reads the spec as poem-openapi emits it, with one normalisation on a copy
//! (the committed file is never touched): error responses are `application/problem+json`
//! (RFC 9457), which progenitor treats as untyped bytes because it only types
//! `application/json`. The copy declares them `application/json`, so every error arrives
//! as its operation's typed problem (`types::LoginProblem` ...). The wire is unchanged: the
//! generated code parses the body as JSON whatever its content type says.
//!
//! Every operation has a problem schema of its own (its `type` an enum of the problem
//! types that operation can answer); each gets an `impl ProblemDocument`, so code that
//! handles any problem (logging, tests) need not name them one by one.

use std::path::{Path, PathBuf};

const SPEC: &str = "../openapi.json";
const PROBLEM_JSON: &str = "application/problem+json";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={SPEC}");
    let text = std::fs::read_to_string(SPEC)?;
    let mut spec: serde_json::Value = serde_json::from_str(&text)?;
    normalise(&mut spec);
    let problems = problem_schemas(&spec);
    let spec: openapiv3::OpenAPI = serde_json::from_value(spec)?;

    let mut generator = progenitor::Generator::default();
    let tokens = generator
        .generate_tokens(&spec)
        .map_err(|e| format!("progenitor refused {SPEC}: {e}"))?;
    let mut code = prettyplease::unparse(&syn::parse2(tokens)?);
    for name in problems {
        code.push_str(&format!(
            "impl crate::ProblemDocument for types::{name} {{\n\
             fn type_uri(&self) -> String {{ self.type_.to_string() }}\n\
             fn status(&self) -> u16 {{ self.status }}\n\
             fn title(&self) -> &str {{ &self.title }}\n\
             fn detail(&self) -> Option<&str> {{ self.detail.as_deref() }}\n\
             fn field(&self) -> Option<&str> {{ self.field.as_deref() }}\n\
             }}\n"
        ));
    }

    let out: PathBuf = Path::new(&std::env::var("OUT_DIR")?).join("codegen.rs");
    std::fs::write(out, code)?;
    Ok(())
}

/// Drops the other media types of a request body that JSON is one of.
fn json_bodies_only(spec: &mut serde_json::Value) {
    let Some(paths) = spec
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let bodies = paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|ops| ops.values_mut())
        .filter_map(|op| op.pointer_mut("/requestBody/content"))
        .filter_map(serde_json::Value::as_object_mut);
    for content in bodies {
        if content.len() > 1 && content.keys().any(|k| k.starts_with("application/json")) {
            content.retain(|k, _| k.starts_with("application/json"));
        }
    }
}

/// The names of the operations' problem schemas (RFC 9457 documents: `type`, `title`,
/// `status`, `detail`, `field`).
fn problem_schemas(spec: &serde_json::Value) -> Vec<String> {
    let Some(schemas) = spec
        .pointer("/components/schemas")
        .and_then(serde_json::Value::as_object)
    else {
        return Vec::new();
    };
    schemas
        .iter()
        .filter(|(_, schema)| {
            ["type", "title", "status", "detail", "field"]
                .iter()
                .all(|p| schema.pointer(&format!("/properties/{p}")).is_some())
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// Declares every `application/problem+json` response as `application/json`, and keeps
/// only the JSON body of an operation that also takes a form (progenitor takes one
/// request media type; a Rust caller has no reason to prefer the form).
fn normalise(spec: &mut serde_json::Value) {
    json_bodies_only(spec);
    let Some(paths) = spec
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|ops| ops.values_mut())
        .filter_map(|op| op.get_mut("responses"))
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(content) = response
            .get_mut("content")
            .and_then(serde_json::Value::as_object_mut)
        else {
            continue;
        };
        if let Some(media) = content.remove(PROBLEM_JSON) {
            content.insert("application/json".to_owned(), media);
        }
    }
}
