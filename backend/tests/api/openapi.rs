//! The committed `openapi.yaml` is the one the code generates (`make openapi` refreshes it).

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
