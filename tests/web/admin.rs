//! The admin pages for procedure schemas (`/verwaltung`): only admins reach
//! them, an upload's errors are shown at their line and column and nothing
//! invalid is stored, a valid upload is stored with its author, diff and
//! replay preview speak German and stay inside the admin's tenant, and an
//! activation serves the admin's own tenant at once and is audited.
use axum::http::StatusCode;

use crate::helpers::{Browser, OTHER_TENANT, TENANT, TestApp, root, spawn_app};
use nachweis::store::review::Role;

fn uvg_text() -> String {
    std::fs::read_to_string(root().join("schemas/procedures/uvg.toml")).unwrap()
}

/// The shipped UVG schema with the Unterhaltstitel asked for always (its
/// condition removed) under a new label: a complete case without a title
/// becomes incomplete.
fn uvg_title_always() -> String {
    let text = uvg_text();
    let changed = text
        .replacen("when = { fact = \"maintenance_title_exists\", equals = true }\n", "", 1)
        .replacen("version = \"2026.11.1\"", "version = \"2026.12.1\"", 1);
    assert_ne!(changed, text);
    changed
}

async fn admin(app: &TestApp, username: &str, tenant: &str) -> Browser {
    app.add_user(username, Role::Admin, tenant).await;
    app.sign_in(username).await
}

/// The value of a hidden field on a page.
fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split('"').next().unwrap().to_string())
}

async fn check(app: &TestApp, who: &Browser, file: &str, text: &str) -> crate::helpers::Reply {
    app.post_form("/verwaltung/pruefen", Some(&who.cookie), &[("csrf", &who.csrf), ("datei", file), ("text", text), ("kommentar", "")]).await
}

/// Checks and saves a text as the admin would (both POSTs), returning the
/// stored version's id.
async fn upload(app: &TestApp, who: &Browser, file: &str, text: &str, comment: &str) -> String {
    let checked = check(app, who, file, text).await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.html());
    let sum = hidden(&checked.html(), "pruefsumme").expect("a valid check offers Speichern");
    let saved = app
        .post_form(
            "/verwaltung/speichern",
            Some(&who.cookie),
            &[("csrf", &who.csrf), ("datei", file), ("text", text), ("kommentar", comment), ("pruefsumme", &sum)],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html());
    let location = saved.location().unwrap();
    let id = location.strip_prefix("/verwaltung/versionen/").unwrap().split('?').next().unwrap();
    id.replace("%40", "@")
}

#[tokio::test]
async fn only_admins_reach_the_schema_pages_and_every_post_needs_the_csrf_token() {
    let app = spawn_app().await;
    let anna = app.caseworker("anna").await;
    app.add_user("revision", Role::Auditor, TENANT).await;
    let auditor = app.sign_in("revision").await;
    let admin = admin(&app, "verwaltung", TENANT).await;
    let pages = [
        "/verwaltung",
        "/verwaltung/hochladen",
        "/verwaltung/hochladen?vorlage=uvg@1",
        "/verwaltung/versionen/uvg@1",
        "/verwaltung/vergleich?a=uvg@1&b=uvg@1",
        "/verwaltung/probelauf",
        "/verwaltung/aktivieren?version=uvg@1",
    ];
    let audited = app.count("SELECT COUNT(*) FROM audit_log").await;
    for path in pages {
        for who in [&anna, &auditor] {
            assert_eq!(app.get(path, Some(&who.cookie)).await.status, StatusCode::FORBIDDEN, "{path}");
        }
        let r = app.get(path, Some(&admin.cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.html());
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, audited, "GET changes nothing, not even the audit log");
    let text = uvg_title_always();
    for who in [&anna, &auditor] {
        let posts: [(&str, Vec<(&str, &str)>); 4] = [
            ("/verwaltung/pruefen", vec![("csrf", &who.csrf), ("datei", "procedures/uvg.toml"), ("text", &text)]),
            ("/verwaltung/speichern", vec![("csrf", &who.csrf), ("datei", "procedures/uvg.toml"), ("text", &text)]),
            ("/verwaltung/probelauf", vec![("csrf", &who.csrf), ("version", "uvg@1")]),
            ("/verwaltung/aktivieren", vec![("csrf", &who.csrf), ("version", "uvg@1")]),
        ];
        for (path, fields) in posts {
            assert_eq!(app.post_form(path, Some(&who.cookie), &fields).await.status, StatusCode::FORBIDDEN, "{path}");
        }
    }
    // The navigation shows the pages to admins only.
    assert!(app.get("/faelle", Some(&admin.cookie)).await.html().contains("href=\"/verwaltung\""));
    assert!(!app.get("/faelle", Some(&anna.cookie)).await.html().contains("href=\"/verwaltung\""));
    // An admin's POST without the session's token changes nothing either.
    let forged = app.post_form("/verwaltung/pruefen", Some(&admin.cookie), &[("csrf", "falsch"), ("datei", "procedures/uvg.toml"), ("text", &text)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = app.post_form("/verwaltung/speichern", Some(&admin.cookie), &[("csrf", "falsch"), ("datei", "procedures/uvg.toml"), ("text", &text)]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM schema_versions").await, 4);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, audited);
}

#[tokio::test]
async fn an_invalid_upload_shows_each_error_at_its_line_and_column_and_stores_nothing() {
    let app = spawn_app().await;
    let admin = admin(&app, "verwaltung", TENANT).await;
    let text = uvg_text()
        .replacen("match_child_name = true", "match_child_nme = true", 1)
        .replacen("accepts = [\"meldebescheinigung\"]", "accepts = [\"meldebescheinigungen\"]", 1);
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let (key_line, type_line) = (line_of("match_child_nme"), line_of("\"meldebescheinigungen\""));
    let type_column = text.lines().nth(type_line - 1).unwrap().find("\"meldebescheinigungen\"").unwrap() + 1;

    let page = check(&app, &admin, "procedures/uvg.toml", &text).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = page.html();
    assert!(html.contains("Die Datei ist nicht gültig:</strong> 2 Fehler"), "{html}");
    assert!(html.contains("Nichts wurde gespeichert."), "{html}");
    // Each message stands right below its line, with the line marked in
    // text (not by colour alone) and a caret under the column.
    for (line, column, message) in [
        (key_line, 1, "Unbekannter Schlüssel „match_child_nme“"),
        (type_line, type_column, "Unbekannter Dokumenttyp „meldebescheinigungen“"),
    ] {
        let row = format!("<tr id=\"z{line}\" class=\"line-error\">");
        let at = html.find(&row).unwrap_or_else(|| panic!("line {line} is marked: {html}"));
        let after = &html[at..];
        assert!(after[..after.find("</tr>").unwrap()].contains("<span class=\"visually-hidden\">Fehler in </span>"), "{after}");
        let diag = &after[after.find("<tr class=\"diag d-error\">").unwrap()..];
        let diag = &diag[..diag.find("</tr>").unwrap()];
        assert!(diag.contains(&format!("(Zeile {line}, Spalte {column}): {message}")), "{diag}");
        assert!(diag.contains(&format!("{}^</pre>", " ".repeat(column - 1))), "{diag}");
        // The list at the top links to the line (the message stands below it).
        assert!(html.contains(&format!("<a href=\"#z{line}\">Zeile {line}, Spalte {column}</a>: {message}")), "{html}");
    }
    assert!(!html.contains("name=\"pruefsumme\""), "an invalid text offers no Speichern");
    // The admin's text is kept in the form for fixing.
    assert!(html.contains("match_child_nme = true</"), "{html}");

    // A syntax error is located too.
    let broken = uvg_text().replacen("deadline_days = 14", "deadline_days 14", 1);
    let page = check(&app, &admin, "procedures/uvg.toml", &broken).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    let line = broken.lines().position(|l| l == "deadline_days 14").unwrap() + 1;
    assert!(page.html().contains(&format!("<tr id=\"z{line}\" class=\"line-error\">")), "{}", page.html());
    assert!(page.html().contains("Gleichheitszeichen"), "{}", page.html());

    // Saving the invalid text anyway (a forged checksum) stores nothing.
    let saved = app
        .post_form("/verwaltung/speichern", Some(&admin.cookie), &[("csrf", &admin.csrf), ("datei", "procedures/uvg.toml"), ("text", &text), ("pruefsumme", "0")])
        .await;
    assert_eq!(saved.status, StatusCode::CONFLICT, "{}", saved.html());
    assert_eq!(app.count("SELECT COUNT(*) FROM schema_versions").await, 4, "nothing stored");
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'schema_added' AND actor <> 'system'").await, 0);
    // Every check is audited with the file name and the counts, not the text.
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'schema_validated' AND actor = 'verwaltung'").await, 3);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'schema_validated' AND json_extract(detail, '$.file') = 'procedures/uvg.toml' AND json_extract(detail, '$.errors') = 2").await,
        2
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'schema_validated' AND detail LIKE '%Antrag%'").await, 0);
}

#[tokio::test]
async fn a_file_name_that_does_not_fit_or_another_tenants_overlay_is_refused() {
    let app = spawn_app().await;
    let admin = admin(&app, "verwaltung", TENANT).await;
    let page = check(&app, &admin, "overlays/lk-musterland/uvg.toml", &uvg_text()).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html().contains("passt nicht zum Inhalt: die Datei ist das Verfahren „uvg“ und gehört nach procedures/uvg.toml"), "{}", page.html());
    let theirs = std::fs::read_to_string(root().join("schemas/overlays/lk-nordheide/uvg.toml")).unwrap();
    let page = check(&app, &admin, "", &theirs).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html().contains("Overlays anderer Landkreise lädt deren Verwaltung hoch"), "{}", page.html());
    let page = check(&app, &admin, "/etc/passwd", "[procedure]\nid = \"x\"\n").await;
    assert!(page.html().contains("keiner der erlaubten"), "{}", page.html());
    // Its own overlay is fine: stored as a new UVG version with the base kept.
    let own = "[overlay]\ntenant = \"lk-musterland\"\nprocedure = \"uvg\"\nversion = \"1\"\n\n[requirements.schulbescheinigung.when]\nchild_age_at_least = 12\n";
    let page = check(&app, &admin, "", own).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html());
    assert!(page.html().contains("Landkreis lk-musterland (Ihr Landkreis): mit Overlay, Bezeichnung „2026.11.1+lk-musterland.1“"), "{}", page.html());
    assert!(page.html().contains("value=\"overlays/lk-musterland/uvg.toml\""), "the name is filled in from the content");
}

#[tokio::test]
async fn a_valid_upload_is_stored_with_its_author_exactly_as_it_was_checked() {
    let app = spawn_app().await;
    let admin = admin(&app, "verwaltung", TENANT).await;
    let text = uvg_title_always();
    let page = check(&app, &admin, "procedures/uvg.toml", &text).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html());
    let html = page.html();
    assert!(html.contains("<strong>Die Datei ist gültig</strong>"), "{html}");
    assert!(html.contains("<strong>uvg</strong>, Versionsbezeichnung „2026.12.1“"), "{html}");
    assert!(html.contains("Landkreis lk-nordheide: mit Overlay, Bezeichnung „2026.12.1+lk-nordheide.1“"), "{html}");
    assert!(html.contains("Speichern als neue Version"), "{html}");
    assert_eq!(app.count("SELECT COUNT(*) FROM schema_versions").await, 4, "checking stores nothing");

    // A text changed after the check is not stored; it is checked again.
    let sum = hidden(&html, "pruefsumme").unwrap();
    let changed = text.replacen("deadline_days = 14", "deadline_days = 21", 1);
    let refused = app
        .post_form("/verwaltung/speichern", Some(&admin.cookie), &[("csrf", &admin.csrf), ("datei", "procedures/uvg.toml"), ("text", &changed), ("pruefsumme", &sum)])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(refused.html().contains("nach der Prüfung geändert"), "{}", refused.html());
    assert_eq!(app.count("SELECT COUNT(*) FROM schema_versions").await, 4);

    // Browsers send a textarea with CRLF line breaks: the stored text has LF.
    let id = upload(&app, &admin, "procedures/uvg.toml", &text.replace('\n', "\r\n"), "Unterhaltstitel immer verlangen").await;
    assert_eq!(id, "uvg@2");
    let page = app.get("/verwaltung/versionen/uvg@2?ok=gespeichert", Some(&admin.cookie)).await;
    assert!(page.html().contains("Gespeichert als uvg@2 (von verwaltung)"), "{}", page.html());
    assert!(page.html().contains("Unterhaltstitel immer verlangen"), "{}", page.html());
    let pool = sqlx::SqlitePool::connect(&app.settings.database_url).await.unwrap();
    let (author, comment, sources): (String, String, String) =
        sqlx::query_as("SELECT author, comment, sources FROM schema_versions WHERE version_id = 'uvg@2'").fetch_one(&pool).await.unwrap();
    pool.close().await;
    assert_eq!((author.as_str(), comment.as_str()), ("verwaltung", "Unterhaltstitel immer verlangen"));
    let sources: serde_json::Value = serde_json::from_str(&sources).unwrap();
    assert_eq!(sources["procedure"]["text"].as_str().unwrap(), text);
    assert_eq!(sources["overlays"].as_array().unwrap().len(), 1, "the active overlays are kept");
    // Not active yet; the overview lists it with its author.
    let overview = app.get("/verwaltung", Some(&admin.cookie)).await.html();
    assert!(overview.contains("<a href=\"/verwaltung/versionen/uvg@2\">uvg@2</a>") && overview.contains("von verwaltung"), "{overview}");
    assert_eq!(app.count("SELECT COUNT(*) FROM schema_activations WHERE version_id = 'uvg@2'").await, 0);
    // The same texts again: no second version, no second audit entry.
    assert_eq!(upload(&app, &admin, "procedures/uvg.toml", &text, "").await, "uvg@2");
    assert_eq!(app.count("SELECT COUNT(*) FROM schema_versions").await, 5);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'schema_added' AND actor = 'verwaltung'").await, 1);
}

#[tokio::test]
async fn diff_shows_a_changed_requirement_in_words() {
    let app = spawn_app().await;
    let admin = admin(&app, "verwaltung", TENANT).await;
    upload(&app, &admin, "procedures/uvg.toml", &uvg_title_always(), "").await;
    // Without a first version: the one serving the admin's tenant.
    let page = app.get("/verwaltung/vergleich?b=uvg@2", Some(&admin.cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html());
    let html = page.html();
    assert!(html.contains("Von uvg@1 zu uvg@2"), "{html}");
    assert!(html.contains("Geändert:</span> „Unterhaltstitel“ (unterhaltstitel): bisher verlangt, wenn zutrifft:"), "{html}");
    assert!(html.contains("neu immer verlangt"), "{html}");
    // Only stored versions: a path on the server is not read.
    let page = app.get("/verwaltung/vergleich?a=/etc/passwd&b=uvg@2", Some(&admin.cookie)).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html().contains("ist keine gespeicherte Verfahrensversion"), "{}", page.html());
}

#[tokio::test]
async fn a_replay_preview_shows_a_complete_case_becoming_incomplete_and_only_the_own_tenants_cases() {
    let app = spawn_app().await;
    let ours = app.seed("uvg-11-buergergeld-statt-lohn").await; // no tenant: the default, lk-musterland
    let theirs = app.seed("uvg-20-pruefsumme-falsch-schwarzes-foto").await; // stadt-beispielburg
    let admin = admin(&app, "verwaltung", TENANT).await;
    let version = upload(&app, &admin, "procedures/uvg.toml", &uvg_title_always(), "").await;
    let before = app.count("SELECT COUNT(*) FROM drafts").await;

    let page = app.post_form("/verwaltung/probelauf", Some(&admin.cookie), &[("csrf", &admin.csrf), ("version", &version), ("seit", "")]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html());
    let html = page.html();
    assert!(html.contains("1 Fall Ihres Landkreises geprüft: bei 1 würde sich etwas ändern, bei 1 das Gesamtergebnis. Kein Fall wurde verändert."), "{html}");
    assert!(html.contains(&format!("<a href=\"/faelle/{ours}\">{ours}</a>")), "{html}");
    assert!(html.contains("vollständig</span> → <span class=\"badge v-incomplete\">unvollständig"), "{html}");
    assert!(html.contains("<strong>Unterhaltstitel</strong> <span class=\"muted\">(unterhaltstitel)</span>: nicht nötig → <strong>fehlt</strong>: "), "{html}");
    assert!(!html.contains(&theirs), "another tenant's case never shows: {html}");

    // The other tenant's admin sees only that tenant's case.
    let other = admin_of_other_tenant(&app).await;
    let page = app.post_form("/verwaltung/probelauf", Some(&other.cookie), &[("csrf", &other.csrf), ("version", &version), ("seit", "")]).await;
    let html = page.html();
    assert!(html.contains("1 Fall Ihres Landkreises geprüft"), "{html}");
    assert!(html.contains(&format!("/faelle/{theirs}")) && !html.contains(&ours), "{html}");
    // A date after both cases: nothing to look at.
    let page = app.post_form("/verwaltung/probelauf", Some(&admin.cookie), &[("csrf", &admin.csrf), ("version", &version), ("seit", "2999-01-01")]).await;
    assert!(page.html().contains("0 Fälle Ihres Landkreises geprüft (Eingang seit 01.01.2999)"), "{}", page.html());
    let page = app.post_form("/verwaltung/probelauf", Some(&admin.cookie), &[("csrf", &admin.csrf), ("version", &version), ("seit", "gestern")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);

    // No case changed; each replay is audited once, with the tenant.
    assert_eq!(app.count("SELECT COUNT(*) FROM drafts").await, before);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'schema_replayed'").await, 3);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'schema_replayed' AND actor = 'verwaltung' AND json_extract(detail, '$.tenant') = 'lk-musterland'").await,
        2
    );
}

async fn admin_of_other_tenant(app: &TestApp) -> Browser {
    admin(app, "verwaltung-beispielburg", OTHER_TENANT).await
}

/// Corrects d6 of the seeded uvg-19 case to `typ` as caseworker `anna`
/// (who holds the case) and returns the case's schema version label after
/// the re-check.
async fn correct(app: &TestApp, anna: &Browser, case: &str, typ: &str) -> String {
    let draft = app.pending_draft(case).await;
    let r = app
        .post_form(
            &format!("/faelle/{case}/korrektur"),
            Some(&anna.cookie),
            &[("csrf", &anna.csrf), ("entwurf", &draft.to_string()), ("dokument", "d6"), ("seite", "1"), ("typ", typ)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html());
    let pool = sqlx::SqlitePool::connect(&app.settings.database_url).await.unwrap();
    let v: String = sqlx::query_scalar("SELECT schema_version FROM cases WHERE case_id = $1").bind(case).fetch_one(&pool).await.unwrap();
    pool.close().await;
    v
}

#[tokio::test]
async fn activation_serves_only_the_admins_own_tenant_at_once_and_is_audited() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await; // no tenant: lk-musterland
    let anna = app.caseworker("anna").await;
    app.post_form(&format!("/faelle/{case}/uebernehmen"), Some(&anna.cookie), &[("csrf", &anna.csrf)]).await;
    let admin = admin(&app, "verwaltung", TENANT).await;
    let version = upload(&app, &admin, "procedures/uvg.toml", &uvg_title_always(), "").await;

    // The other tenant's admin activates it, even naming our tenant in the
    // form: it serves only their own tenant, and our cases keep uvg@1.
    let other = admin_of_other_tenant(&app).await;
    let r = app.post_form("/verwaltung/aktivieren", Some(&other.cookie), &[("csrf", &other.csrf), ("version", &version), ("tenant", TENANT)]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.html());
    assert_eq!(app.count("SELECT COUNT(*) FROM schema_activations WHERE version_id = 'uvg@2' AND tenant = 'stadt-beispielburg'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM schema_activations WHERE tenant = 'lk-musterland'").await, 0);
    assert_eq!(correct(&app, &anna, &case, "trennungsnachweis").await, "2026.11.1", "our tenant still checks with uvg@1");
    assert!(!app.store.current_draft(&case).await.unwrap().unwrap().text.contains("Unterhaltstitel"));

    // The confirmation step says what changes for our tenant; GET changes nothing.
    let page = app.get(&format!("/verwaltung/aktivieren?version={version}"), Some(&admin.cookie)).await;
    let html = page.html();
    assert!(html.contains("Was sich für Ihren Landkreis ändert") && html.contains("„Unterhaltstitel“ (unterhaltstitel)"), "{html}");
    assert!(html.contains("Ja, uvg@2 für lk-musterland aktivieren"), "{html}");
    assert!(html.contains("nachweis schema activate VERSION"), "the page says who activates the default: {html}");
    assert_eq!(app.count("SELECT COUNT(*) FROM schema_activations WHERE tenant = 'lk-musterland'").await, 0);

    let r = app.post_form("/verwaltung/aktivieren", Some(&admin.cookie), &[("csrf", &admin.csrf), ("version", &version)]).await;
    assert_eq!(r.location().as_deref(), Some("/verwaltung?ok=aktiviert&version=uvg%402"), "{}", r.html());
    let overview = app.get("/verwaltung?ok=aktiviert&version=uvg@2", Some(&admin.cookie)).await.html();
    assert!(overview.contains("uvg@2 ist jetzt für Ihren Landkreis (lk-musterland) aktiv"), "{overview}");
    assert!(overview.contains("Ihr Landkreis (lk-musterland)"), "{overview}");
    // The very next check in the server uses it, without waiting for the periodic reload.
    assert_eq!(correct(&app, &anna, &case, "vaterschaftsnachweis").await, "2026.12.1");
    let letter = app.store.current_draft(&case).await.unwrap().unwrap().text;
    assert!(letter.contains("Unterhaltstitels"), "the letter now asks for the title: {letter}");
    // Activating again is refused; the catalogue is not the admin's to activate.
    let again = app.post_form("/verwaltung/aktivieren", Some(&admin.cookie), &[("csrf", &admin.csrf), ("version", &version)]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let catalogue = app.post_form("/verwaltung/aktivieren", Some(&admin.cookie), &[("csrf", &admin.csrf), ("version", "catalogue@1")]).await;
    assert_eq!(catalogue.status, StatusCode::FORBIDDEN);
    // Audited once per activation, by whom, for which tenant, replacing what.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'schema_activated' AND actor = 'verwaltung' AND schema_version = 'uvg@2' AND json_extract(detail, '$.tenant') = 'lk-musterland'").await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'schema_activated' AND actor <> 'system'").await, 2);
}
