//! `GET /api/users/search`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, TestApp, User};
use crate::support::*;

async fn search(app: &TestApp, user: &User, query: &str) -> Vec<Value> {
    let r = app
        .get(&format!("/api/users/search?{query}"), &user.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "search ?{query}: {r:?}");
    let users = r.body.as_array().expect("an array").clone();
    users.iter().for_each(assert_user);
    users
}

async fn names(app: &TestApp, user: &User, query: &str) -> Vec<String> {
    let mut n: Vec<String> = search(app, user, query)
        .await
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect();
    n.sort();
    n
}

fn strs(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn search_matches_username_and_display_name_case_insensitively() {
    let app = spawn_app().await;
    let zed = app.register("zed").await;
    register_named(&app, "alice", "Alice Liddell").await;
    register_named(&app, "Alicia", "Keys").await;
    register_named(&app, "bob", "Bob MALIbu").await;
    register_named(&app, "carol", "Carol").await;

    assert_eq!(
        names(&app, &zed, "q=ali").await,
        strs(&["alice", "Alicia", "bob"])
    );
    assert_eq!(
        names(&app, &zed, "q=ALI").await,
        strs(&["alice", "Alicia", "bob"])
    );
    assert_eq!(
        names(&app, &zed, "q=aLiC").await,
        strs(&["alice", "Alicia"])
    );
    // Display name only.
    assert_eq!(names(&app, &zed, "q=LIDDELL").await, strs(&["alice"]));
    assert_eq!(names(&app, &zed, "q=keys").await, strs(&["Alicia"]));
    // Substring anywhere.
    assert_eq!(names(&app, &zed, "q=rol").await, strs(&["carol"]));
    assert!(names(&app, &zed, "q=nobody-like-this").await.is_empty());

    // The result objects are full users, with the stored case and display names.
    let found = search(&app, &zed, "q=keys").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["username"], "Alicia");
    assert_eq!(found[0]["display_name"], "Keys");
}

#[tokio::test]
async fn search_folds_non_ascii_display_names() {
    let app = spawn_app().await;
    let zed = app.register("zed").await;
    register_named(&app, "pastry", "Éclair Über").await;
    assert_eq!(names(&app, &zed, "q=%C3%A9clair").await, strs(&["pastry"])); // "éclair"
    assert_eq!(names(&app, &zed, "q=%C3%9CBER").await, strs(&["pastry"])); // "ÜBER"
}

#[tokio::test]
async fn search_never_returns_the_caller_nor_password_hashes() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    app.register("alicia").await;
    assert_eq!(names(&app, &alice, "q=ali").await, strs(&["alicia"]));
    assert!(names(&app, &alice, "q=alice").await.is_empty());
    let r = crate::support::raw(
        &app,
        reqwest::Method::GET,
        "/api/users/search?q=ali",
        Some(&alice.token),
        None,
        None,
    )
    .await;
    assert!(!r.text.to_lowercase().contains("password"), "{}", r.text);
    assert!(!r.text.contains("$2"), "{}", r.text);
}

#[tokio::test]
async fn search_honours_limit_and_defaults_to_twenty() {
    let app = spawn_app().await;
    let zed = app.register("zed").await;
    for i in 0..23 {
        app.register(&format!("user{i:02}")).await;
    }
    assert_eq!(
        search(&app, &zed, "q=user").await.len(),
        20,
        "default limit"
    );
    for limit in [1, 2, 5, 23] {
        let found = search(&app, &zed, &format!("q=user&limit={limit}")).await;
        assert_eq!(found.len(), limit, "limit={limit}");
    }
    assert_eq!(search(&app, &zed, "q=user&limit=50").await.len(), 23);
    // Different limits page over the same order: the first n of a bigger page.
    let five: Vec<Value> = search(&app, &zed, "q=user&limit=5").await;
    let ten: Vec<Value> = search(&app, &zed, "q=user&limit=10").await;
    assert_eq!(five[..], ten[..5]);
}

#[tokio::test]
async fn search_rejects_bad_queries() {
    let app = spawn_app().await;
    let zed = app.register("zed").await;
    for query in ["q=", "q=%20%20", "", "limit=5"] {
        let r = app
            .get(&format!("/api/users/search?{query}"), &zed.token)
            .await;
        assert_invalid(&r, &["q"]);
    }
    let long = "a".repeat(65);
    let r = app
        .get(&format!("/api/users/search?q={long}"), &zed.token)
        .await;
    assert_invalid(&r, &["q"]);
    for limit in ["0", "51", "-1"] {
        let r = app
            .get(&format!("/api/users/search?q=a&limit={limit}"), &zed.token)
            .await;
        assert_invalid(&r, &["limit"]);
    }
    let r = app.get("/api/users/search?q=a&limit=ten", &zed.token).await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn like_wildcards_are_literal() {
    let app = spawn_app().await;
    let zed = app.register("zed").await;
    app.register("x_y").await;
    app.register("xay").await;
    app.register("x.y").await;
    register_named(&app, "pct", "100% real").await;
    register_named(&app, "plain", "100 real").await;
    register_named(&app, "slash", "back\\slash").await;
    register_named(&app, "noslash", "backslash").await;

    // `_` matches only an underscore, not any character.
    assert_eq!(names(&app, &zed, "q=x_y").await, strs(&["x_y"]));
    assert_eq!(names(&app, &zed, "q=_").await, strs(&["x_y"]));
    // `%` matches only a percent sign, not any text.
    assert_eq!(names(&app, &zed, "q=0%25").await, strs(&["pct"]));
    assert_eq!(names(&app, &zed, "q=%25").await, strs(&["pct"]));
    // `\` is literal too (it is the escape character inside the query).
    assert_eq!(names(&app, &zed, "q=%5C").await, strs(&["slash"]));
    assert_eq!(names(&app, &zed, "q=k%5Cs").await, strs(&["slash"]));
    // A `.` is an ordinary character.
    assert_eq!(names(&app, &zed, "q=x.y").await, strs(&["x.y"]));
}
