//! The HTML templates (minijinja, compiled into the binary) and their
//! rendering. Autoescaping is on for every template, so applicant text in a
//! page is always text, never markup.
use axum::http::StatusCode;
use axum::response::Html;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use std::sync::LazyLock;

/// (name, source) of every template.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("queue.html", include_str!("templates/queue.html")),
    ("case.html", include_str!("templates/case.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("audit_index.html", include_str!("templates/audit_index.html")),
    ("error.html", include_str!("templates/error.html")),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, source) in TEMPLATES {
        env.add_template(name, source).unwrap_or_else(|e| panic!("template {name} is invalid: {e}"));
    }
    env
});

/// Renders a template with its context. A template error is a bug; it is
/// logged and answered with a plain error page.
pub fn render(name: &str, context: impl Serialize) -> Result<Html<String>, super::error::PageError> {
    ENV.get_template(name).and_then(|t| t.render(context)).map(Html).map_err(|e| {
        let reference = super::error::log_internal(&format!("template {name}: {e:#}"));
        super::error::PageError::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Die Seite konnte nicht angezeigt werden (Referenz {reference})."),
        )
    })
}

/// The error page. Falls back to plain text should the template fail, so
/// that an error page never errors.
pub fn render_error(status: StatusCode, message: &str) -> Html<String> {
    let context = minijinja::context! { status => status.as_u16(), reason => status.canonical_reason().unwrap_or(""), message => message };
    match ENV.get_template("error.html").and_then(|t| t.render(context)) {
        Ok(html) => Html(html),
        Err(_) => Html(format!("<!doctype html><html lang=\"de\"><title>Fehler</title><p>{}</p></html>", html_escape(message))),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        for (name, _) in super::TEMPLATES {
            assert!(super::ENV.get_template(name).is_ok(), "{name}");
        }
    }
}
