//! Generates the client from the committed contract, `openapi/openapi.json`, at build time:
//! a spec that cannot generate a working client fails the build.
//!
//! progenitor reads the spec as poem-openapi emits it, with one normalisation on a copy
//! (the committed file is never touched): error responses are `application/problem+json`
//! (RFC 9457), which progenitor treats as untyped bytes because it only types
//! `application/json`. The copy declares them `application/json`, so every error arrives
//! as the typed `types::Problem`. The wire is unchanged: the generated code parses the
//! body as JSON whatever its content type says.

use std::path::{Path, PathBuf};

const SPEC: &str = "../openapi.json";
const PROBLEM_JSON: &str = "application/problem+json";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={SPEC}");
    let text = std::fs::read_to_string(SPEC)?;
    let mut spec: serde_json::Value = serde_json::from_str(&text)?;
    normalise(&mut spec);
    let spec: openapiv3::OpenAPI = serde_json::from_value(spec)?;

    let mut generator = progenitor::Generator::default();
    let tokens = generator
        .generate_tokens(&spec)
        .map_err(|e| format!("progenitor refused {SPEC}: {e}"))?;
    let code = prettyplease::unparse(&syn::parse2(tokens)?);

    let out: PathBuf = Path::new(&std::env::var("OUT_DIR")?).join("codegen.rs");
    std::fs::write(out, code)?;
    Ok(())
}

/// Declares every `application/problem+json` response as `application/json`.
fn normalise(spec: &mut serde_json::Value) {
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
