use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let r = app
        .call(reqwest::Method::GET, "/api/health", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        serde_json::json!({"status": "ok", "broker": {"kind": "in_process", "connected": true}})
    );
}
