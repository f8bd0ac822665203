//! The committed `openapi.yaml` and `asyncapi.json` are the ones the code generates (`make
//! openapi` refreshes both).

#[test]
fn committed_spec_is_current() {
    let generated = letschat::openapi::yaml().expect("spec renders");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.yaml is stale: run `make openapi` and commit the result"
    );
}

#[test]
fn committed_asyncapi_document_is_current() {
    let generated = letschat::asyncapi::json();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../asyncapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "asyncapi.json is stale: run `make openapi` and commit the result"
    );
}
