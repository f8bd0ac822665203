//! The AsyncAPI document as a page for people, at `/api/docs/websocket`: rendered on the server
//! from the document (its CommonMark descriptions through `pulldown-cmark`), one stylesheet
//! (`/api/docs/websocket.css`), no script at all, readable from a phone's width up.

use std::fmt::Write as _;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use serde_json::{Map, Value};

/// Where the page's stylesheet is served.
pub const STYLESHEET: &str = "/api/docs/websocket.css";

/// The page's policy: its stylesheet, nothing else (no script, no inline style).
pub const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const CSS: &str = include_str!("page.css");

/// The document and its page, made once at startup.
#[derive(Debug, Clone)]
pub struct Published {
    json: String,
    html: String,
}

impl Published {
    pub fn new() -> Published {
        let doc = super::build();
        Published {
            json: super::json(),
            html: render(&doc),
        }
    }
}

impl Default for Published {
    fn default() -> Self {
        Published::new()
    }
}

/// `GET /api/asyncapi.json`.
pub async fn document(published: web::Data<Published>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(published.json.clone())
}

/// `GET /api/docs/websocket`.
pub async fn page(published: web::Data<Published>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_POLICY))
        .body(published.html.clone())
}

/// `GET /api/docs/websocket.css`.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(CSS)
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// A heading of the page, for the table of contents.
struct Heading {
    level: u8,
    id: String,
    text: String,
}

/// CommonMark to HTML. Raw HTML in the text is shown as text; headings move down by `shift`
/// levels and get ids (recorded in `headings`); tables scroll sideways on narrow screens.
fn markdown(text: &str, shift: u8, headings: &mut Vec<Heading>) -> String {
    // The headings' texts first, to give each its id when it opens.
    let mut titles = Vec::new();
    let mut current: Option<String> = None;
    for event in Parser::new_ext(text, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => current = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => titles.extend(current.take()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(&t);
                }
            }
            _ => {}
        }
    }
    let mut titles = titles.into_iter();
    let events = Parser::new_ext(text, Options::ENABLE_TABLES).flat_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => vec![Event::Text(raw)],
        Event::Start(Tag::Heading { level, .. }) => {
            let title = titles.next().unwrap_or_default();
            let level = (level as u8 + shift).min(6);
            let id = slug(&title);
            let open = format!("<h{level} id=\"{id}\">");
            headings.push(Heading {
                level,
                id,
                text: title,
            });
            vec![Event::Html(CowStr::from(open))]
        }
        Event::End(TagEnd::Heading(level)) => {
            let level = (level as u8 + shift).min(6);
            vec![Event::Html(CowStr::from(format!("</h{level}>\n")))]
        }
        Event::Start(Tag::Table(align)) => vec![
            Event::Html(CowStr::from("<div class=\"scroll\">")),
            Event::Start(Tag::Table(align)),
        ],
        Event::End(TagEnd::Table) => vec![
            Event::End(TagEnd::Table),
            Event::Html(CowStr::from("</div>\n")),
        ],
        other => vec![other],
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// The target of a `$ref` to a schema of the document.
fn target<'a>(schema: &Value, schemas: &'a Map<String, Value>) -> Option<(&'a str, &'a Value)> {
    let name = schema["$ref"]
        .as_str()?
        .strip_prefix("#/components/schemas/")?;
    schemas.get_key_value(name).map(|(k, v)| (k.as_str(), v))
}

/// Whether a schema is an object the page describes on its own.
fn is_object(schema: &Value) -> bool {
    schema["type"] == "object" && schema.get("properties").is_some()
}

/// A schema's type, as shown next to a field: objects link to their description.
fn type_label(schema: &Value, schemas: &Map<String, Value>) -> String {
    if let Some((name, resolved)) = target(schema, schemas) {
        return if is_object(resolved) {
            format!("<a href=\"#object-{}\">{}</a>", slug(name), esc(name))
        } else {
            type_label(resolved, schemas)
        };
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema[key].as_array() {
            return options
                .iter()
                .map(|o| type_label(o, schemas))
                .collect::<Vec<_>>()
                .join(" | ");
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let mut labels = Vec::new();
    for t in types {
        let label = match t {
            "array" => format!("array of {}", type_label(&schema["items"], schemas)),
            "string" => match schema["format"].as_str() {
                Some(f @ ("date-time" | "binary")) => format!("string ({f})"),
                _ => "string".to_owned(),
            },
            other => other.to_owned(),
        };
        labels.push(label);
    }
    if labels.is_empty() {
        "any".to_owned()
    } else {
        labels.join(" | ")
    }
}

/// A schema's limits, in words.
fn limits(schema: &Value) -> Vec<String> {
    let n = |k: &str| schema[k].as_i64();
    let mut out = Vec::new();
    match (n("minLength"), n("maxLength")) {
        (Some(a), Some(b)) => out.push(format!("{a}–{b} characters")),
        (None, Some(b)) => out.push(format!("at most {b} characters")),
        (Some(a), None) => out.push(format!("at least {a} characters")),
        _ => {}
    }
    if let Some(m) = n("minimum") {
        out.push(format!("≥ {m}"));
    }
    if let Some(m) = n("maximum") {
        out.push(format!("≤ {m}"));
    }
    if let Some(m) = n("maxItems") {
        out.push(format!("at most {m} items"));
    }
    out
}

/// The fields of an object schema.
fn fields(schema: &Value, schemas: &Map<String, Value>) -> String {
    let required = crate::openapi::required(schema);
    let mut html = String::from("<dl class=\"fields\">\n");
    // A frame's `type` first, then the rest as declared.
    let mut props: Vec<(&String, &Value)> = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .collect();
    props.sort_by_key(|(name, _)| name.as_str() != "type");
    for (name, prop) in props {
        let mut resolved = prop;
        if let Some((_, r)) = target(prop, schemas).filter(|(_, r)| !is_object(r)) {
            resolved = r;
        }
        let mut notes = limits(prop);
        for note in limits(resolved) {
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        let presence = if required.contains(&name.as_str()) {
            "required"
        } else {
            "optional"
        };
        let _ = write!(
            html,
            "<div class=\"field\"><dt><code class=\"name\">{}</code> <span class=\"type\">{}</span> <span class=\"presence {presence}\">{presence}</span>",
            esc(name),
            type_label(prop, schemas),
        );
        for note in notes {
            let _ = write!(html, " <span class=\"limit\">{}</span>", esc(&note));
        }
        html.push_str("</dt>");
        let description = prop["description"]
            .as_str()
            .or_else(|| resolved["description"].as_str());
        if let Some(d) = description {
            let _ = write!(html, "<dd>{}</dd>", markdown(d, 6, &mut Vec::new()));
        }
        html.push_str("</div>\n");
    }
    html.push_str("</dl>\n");
    html
}

/// JSON for people: pretty, but short objects and arrays on one line.
fn readable_json(v: &Value) -> String {
    const WIDTH: usize = 64;
    fn one_line(v: &Value) -> String {
        match v {
            Value::Array(items) => format!(
                "[{}]",
                items.iter().map(one_line).collect::<Vec<_>>().join(", ")
            ),
            Value::Object(map) => format!(
                "{{{}}}",
                map.iter()
                    .map(|(k, v)| format!("{}: {}", Value::from(k.as_str()), one_line(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            scalar => scalar.to_string(),
        }
    }
    /// `v` at nesting `depth`, starting at `column` of its line.
    fn block(v: &Value, depth: usize, column: usize, out: &mut String) {
        let line = one_line(v);
        let nested = matches!(v, Value::Array(a) if !a.is_empty())
            || matches!(v, Value::Object(m) if !m.is_empty());
        if !nested || column + line.chars().count() <= WIDTH {
            out.push_str(&line);
            return;
        }
        let pad = "  ".repeat(depth + 1);
        let (open, end, items): (char, char, Vec<(Option<&String>, &Value)>) = match v {
            Value::Array(a) => ('[', ']', a.iter().map(|x| (None, x)).collect()),
            Value::Object(m) => ('{', '}', m.iter().map(|(k, x)| (Some(k), x)).collect()),
            _ => return,
        };
        out.push(open);
        for (i, (key, item)) in items.iter().enumerate() {
            out.push('\n');
            out.push_str(&pad);
            let mut column = pad.len();
            if let Some(key) = key {
                let key = format!("{}: ", Value::from(key.as_str()));
                column += key.chars().count();
                out.push_str(&key);
            }
            block(item, depth + 1, column, out);
            if i + 1 < items.len() {
                out.push(',');
            }
        }
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
        out.push(end);
    }
    let mut out = String::new();
    block(v, 0, 0, &mut out);
    out
}

fn example(summary: &str, payload: &Value) -> String {
    format!(
        "<figure class=\"example\"><figcaption>Example: {}</figcaption><pre><code>{}</code></pre></figure>\n",
        esc(summary),
        esc(&readable_json(payload))
    )
}

/// One frame's section.
fn frame_section(id: &str, message: &Value, doc: &Value, headings: &mut Vec<Heading>) -> String {
    let schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let anchor = slug(id);
    let kind = message["name"].as_str().unwrap_or_default();
    let title = message["title"].as_str().unwrap_or_default();
    headings.push(Heading {
        level: 3,
        id: anchor.clone(),
        text: kind.to_owned(),
    });
    let mut html = format!(
        "<section class=\"frame\" id=\"{anchor}\">\n<h3><code>{}</code> <span class=\"title\">{}</span></h3>\n<p class=\"summary\">{}</p>\n",
        esc(kind),
        esc(title),
        inline(message["summary"].as_str().unwrap_or_default()),
    );
    html.push_str(&markdown(
        message["description"].as_str().unwrap_or_default(),
        6,
        headings,
    ));
    let replies: Vec<String> = doc["operations"][id]["reply"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["$ref"].as_str()?.rsplit('/').next())
        .map(|r| {
            let name = r.strip_prefix("server.").unwrap_or(r);
            format!("<a href=\"#{}\"><code>{}</code></a>", slug(r), esc(name))
        })
        .collect();
    if !replies.is_empty() {
        let _ = writeln!(
            html,
            "<p class=\"replies\">Answered with {}.</p>",
            replies.join(", ")
        );
    }
    if let Some((_, payload)) = target(&message["payload"], &schemas) {
        html.push_str("<h4>Fields</h4>\n");
        html.push_str(&fields(payload, &schemas));
    }
    for e in message["examples"].as_array().into_iter().flatten() {
        html.push_str(&example(
            e["summary"].as_str().unwrap_or_default(),
            &e["payload"],
        ));
    }
    html.push_str("</section>\n");
    html
}

/// Inline CommonMark (a summary): its single paragraph's content.
fn inline(text: &str) -> String {
    let html = markdown(text, 0, &mut Vec::new());
    html.trim()
        .trim_start_matches("<p>")
        .trim_end_matches("</p>")
        .to_owned()
}

/// The table of contents: the sections, each with the frames or objects in it.
fn contents(headings: &[Heading]) -> String {
    let mut groups: Vec<(&Heading, Vec<&Heading>)> = Vec::new();
    for h in headings {
        match (h.level, groups.last_mut()) {
            (2, _) | (_, None) => groups.push((h, Vec::new())),
            (3, Some((_, children))) => children.push(h),
            _ => {}
        }
    }
    let link = |h: &Heading| {
        let frame = h.level == 3 && (h.id.starts_with("client-") || h.id.starts_with("server-"));
        let text = if frame {
            format!("<code>{}</code>", esc(&h.text))
        } else {
            esc(&h.text)
        };
        format!("<a href=\"#{}\">{text}</a>", esc(&h.id))
    };
    let mut html =
        String::from("<nav class=\"toc\" aria-label=\"Contents\">\n<h2>Contents</h2>\n<ul>\n");
    for (section, children) in groups {
        html.push_str("<li>");
        html.push_str(&link(section));
        if !children.is_empty() {
            html.push_str("<ul>");
            for child in children {
                let _ = write!(html, "<li>{}</li>", link(child));
            }
            html.push_str("</ul>");
        }
        html.push_str("</li>\n");
    }
    html.push_str("</ul>\n</nav>\n");
    html
}

/// The whole page.
pub fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let channel = &doc["channels"]["chat"];
    let title = info["title"].as_str().unwrap_or_default();
    let overview = info["description"].as_str().unwrap_or_default();
    // The overview's opening paragraphs, then how to connect, then its sections.
    let (intro, sections) = match overview.find("\n## ") {
        Some(at) => overview.split_at(at),
        None => (overview, ""),
    };
    let mut headings = Vec::new();
    let intro = markdown(intro, 0, &mut headings);

    let mut connecting = String::new();
    headings.push(Heading {
        level: 2,
        id: "connecting".into(),
        text: "Connecting".into(),
    });
    let _ = write!(
        connecting,
        "<section id=\"connecting\">\n<h2>Connecting</h2>\n<p class=\"address\"><code>GET {}</code></p>\n",
        esc(channel["address"].as_str().unwrap_or_default())
    );
    connecting.push_str("<dl class=\"servers\">\n");
    for server in doc["servers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|s| s.1)
    {
        let mut host = server["host"].as_str().unwrap_or_default().to_owned();
        for (name, var) in server["variables"].as_object().into_iter().flatten() {
            host = host.replace(
                &format!("{{{name}}}"),
                var["default"].as_str().unwrap_or_default(),
            );
        }
        let _ = writeln!(
            connecting,
            "<div><dt>{}</dt><dd><code>{}://{}{}</code> {}</dd></div>",
            esc(server["title"].as_str().unwrap_or_default()),
            esc(server["protocol"].as_str().unwrap_or_default()),
            esc(&host),
            esc(channel["address"].as_str().unwrap_or_default()),
            inline(server["description"].as_str().unwrap_or_default()),
        );
    }
    connecting.push_str("</dl>\n");
    connecting.push_str(&markdown(
        channel["description"].as_str().unwrap_or_default(),
        1,
        &mut headings,
    ));
    connecting.push_str("</section>\n");

    let sections = markdown(sections, 0, &mut headings);

    let mut frames = String::new();
    for (prefix, heading, anchor) in [
        ("client.", "Client → server", "client-frames"),
        ("server.", "Server → client", "server-frames"),
    ] {
        headings.push(Heading {
            level: 2,
            id: anchor.into(),
            text: heading.into(),
        });
        let _ = write!(frames, "<section id=\"{anchor}\">\n<h2>{heading}</h2>\n");
        for (id, message) in doc["components"]["messages"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(id, _)| id.starts_with(prefix))
        {
            frames.push_str(&frame_section(id, message, doc, &mut headings));
        }
        frames.push_str("</section>\n");
    }

    let schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    headings.push(Heading {
        level: 2,
        id: "objects".into(),
        text: "Objects".into(),
    });
    let mut objects = String::from(
        "<section id=\"objects\">\n<h2>Objects</h2>\n<p>The objects frames carry, as the REST API returns them.</p>\n",
    );
    for (name, schema) in schemas.iter().filter(|(name, s)| {
        is_object(s) && !name.starts_with("client.") && !name.starts_with("server.")
    }) {
        let anchor = format!("object-{}", slug(name));
        headings.push(Heading {
            level: 3,
            id: anchor.clone(),
            text: name.clone(),
        });
        let _ = write!(
            objects,
            "<section class=\"object\" id=\"{anchor}\">\n<h3>{}</h3>\n",
            esc(name)
        );
        if let Some(d) = schema["description"].as_str() {
            objects.push_str(&markdown(d, 6, &mut Vec::new()));
        }
        objects.push_str(&fields(schema, &schemas));
        if let Some(e) = schema["examples"].get(0) {
            objects.push_str(&example(name, e));
        }
        objects.push_str("</section>\n");
    }
    objects.push_str("</section>\n");

    let toc = contents(&headings);

    let version = info["version"].as_str().unwrap_or_default();
    format!(
        "<!doctype html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<meta name=\"color-scheme\" content=\"light dark\">
<title>{title_text}</title>
<link rel=\"stylesheet\" href=\"{STYLESHEET}\">
</head>
<body>
<header class=\"top\"><div class=\"inner\">
<p class=\"crumbs\"><a href=\"/api/docs/\">REST API</a> · <strong>WebSocket</strong> · <a href=\"{json}\">AsyncAPI document</a></p>
<h1>{title_text}</h1>
<p class=\"meta\">Version {version} · AsyncAPI {asyncapi} · <code>{address}</code></p>
</div></header>
<div class=\"layout\">
{toc}<main>
{intro}{connecting}{sections}{frames}{objects}</main>
</div>
</body>
</html>
",
        title_text = esc(title),
        json = crate::openapi::ASYNCAPI_JSON,
        version = esc(version),
        asyncapi = esc(doc["asyncapi"].as_str().unwrap_or_default()),
        address = esc(channel["address"].as_str().unwrap_or_default()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_shows_html_as_text_and_gives_headings_ids() {
        let mut headings = Vec::new();
        let html = markdown(
            "## Close codes\n\n<script>alert(1)</script> and <b onclick=\"x()\">bold</b>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
            1,
            &mut headings,
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b "), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(
            html.contains("<h3 id=\"close-codes\">Close codes</h3>"),
            "{html}"
        );
        assert!(html.contains("<div class=\"scroll\"><table>"), "{html}");
        assert_eq!(headings.len(), 1);
        assert_eq!(
            (headings[0].level, headings[0].id.as_str()),
            (3, "close-codes")
        );
    }

    #[test]
    fn readable_json_keeps_short_things_on_one_line() {
        let v = serde_json::json!({"type": "ping"});
        assert_eq!(readable_json(&v), "{\"type\": \"ping\"}");
        let v = serde_json::json!({"type": "read", "message": {"id": 1, "user_ids": [2, 3], "body": "x".repeat(80)}});
        let text = readable_json(&v);
        assert!(
            text.contains("\n  \"message\": {\n    \"id\": 1,"),
            "{text}"
        );
        assert!(text.contains("\"user_ids\": [2, 3]"), "{text}");
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
    }

    #[test]
    fn the_page_has_no_script_and_names_every_frame() {
        let html = render(&super::super::build());
        assert!(!html.contains("<script") && !html.contains(" style="));
        for id in [
            "client-send",
            "server-ack",
            "server-message-updated",
            "object-message",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
    }
}
