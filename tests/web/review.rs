//! The caseworker's work on a case through the pages: claim, correct a
//! classification, edit, approve once, reject, close, and the queue.
use axum::http::StatusCode;

use crate::helpers::{TENANT, spawn_app};
use nachweis::store::review::Role;

/// `pdftotext -layout` of a PDF (poppler-utils is installed by the test command).
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("letter.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext").args(["-layout"]).arg(&path).arg("-").output().expect("pdftotext runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_caseworker_claims_corrects_edits_and_approves_the_letter_exactly_once() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    let page = app.get(&format!("/faelle/{case}"), Some(&anna.cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("unvollständig") && html.contains("Vaterschaftsanerkennung"), "{html}");
    assert!(!html.contains("Korrigieren und neu prüfen"), "no correction before the case is claimed");

    let claimed = app.post_form(&format!("/faelle/{case}/uebernehmen"), Some(&anna.cookie), &[("csrf", &anna.csrf)]).await;
    assert_eq!(claimed.location(), Some(format!("/faelle/{case}?ok=uebernommen")));

    // d6 was read as Vaterschaftsanerkennung; the caseworker says it is the
    // proof of separation. The check re-runs: Trennung is now there,
    // Vaterschaft is missing, and the letter asks for that instead.
    let first = app.pending_draft(&case).await;
    let before = app.store.current_draft(&case).await.unwrap().unwrap().text;
    assert!(before.contains("dauernd getrennt"), "{before}");
    let corrected = app
        .post_form(
            &format!("/faelle/{case}/korrektur"),
            Some(&anna.cookie),
            &[("csrf", &anna.csrf), ("entwurf", &first.to_string()), ("dokument", "d6"), ("seite", "1"), ("typ", "trennungsnachweis")],
        )
        .await;
    assert_eq!(corrected.status, StatusCode::SEE_OTHER, "{}", corrected.text());
    let second = app.pending_draft(&case).await;
    assert_ne!(first, second);
    let after = app.store.current_draft(&case).await.unwrap().unwrap().text;
    assert!(after.contains("Vaterschaft") && !after.contains("dauernd getrennt"), "{after}");
    let page = app.get(&format!("/faelle/{case}?ok=korrigiert"), Some(&anna.cookie)).await.text();
    assert!(page.contains("korrigiert, vorher „Vaterschaftsanerkennung"), "{page}");
    assert_eq!(app.count("SELECT COUNT(*) FROM corrections").await, 1);

    // The caseworker adds a sentence and approves in one step.
    let edited = after.replace("Mit freundlichen Grüßen", "Bei Rückfragen helfen wir Ihnen gern.\n\nMit freundlichen Grüßen");
    let approve = |draft: i64, text: String| {
        let (app, anna, case) = (&app, anna.clone(), case.clone());
        async move {
            app.post_form(&format!("/faelle/{case}/freigabe"), Some(&anna.cookie), &[("csrf", &anna.csrf), ("entwurf", &draft.to_string()), ("text", &text)])
                .await
        }
    };
    // The preview renders the stored version and changes nothing.
    let preview = app.get(&format!("/faelle/{case}/vorschau/{second}.pdf"), Some(&anna.cookie)).await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(pdf_text(&preview.body).contains("Vaterschaft"));
    assert_eq!(app.count("SELECT COUNT(*) FROM letters").await, 0);
    let approved = approve(second, edited.clone()).await;
    assert_eq!(approved.location(), Some(format!("/faelle/{case}?ok=freigegeben")), "{}", approved.text());
    // A double click sends the same form again: nothing more happens.
    let again = approve(second, edited.clone()).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    assert!(again.text().contains("bereits entschieden"), "{}", again.text());
    assert_eq!(app.count("SELECT COUNT(*) FROM letters").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox WHERE event_type = 'letter.approved'").await, 1);

    // The PDF holds the edited text, the deadline and the legal notice.
    let letter_draft = app.store.current_draft(&case).await.unwrap().unwrap();
    assert_eq!(letter_draft.status, "approved");
    let pdf = app.get(&format!("/faelle/{case}/schreiben/{}.pdf", letter_draft.draft_id), Some(&anna.cookie)).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.headers.get("content-type").unwrap(), "application/pdf");
    let text = pdf_text(&pdf.body);
    assert!(text.contains("Bei Rückfragen helfen wir Ihnen gern."), "{text}");
    assert!(text.contains("§ 66 Abs. 3 SGB I"), "{text}");
    assert!(text.contains("Anlage"), "{text}");

    // Every step is in the case's audit trail, the edit with its diff.
    let trail = app.count("SELECT COUNT(*) FROM audit_log WHERE action IN ('case_claimed', 'segment_corrected', 'draft_edited', 'draft_approved')").await;
    assert_eq!(trail, 4);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_attachments WHERE content LIKE '%+Bei Rückfragen%'").await, 1);
    assert!(app.store.verify_audit_chain().await.unwrap().is_intact());
}

#[tokio::test]
async fn a_letter_whose_deadline_or_legal_notice_was_deleted_is_not_approved() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    app.post_form(&format!("/faelle/{case}/uebernehmen"), Some(&anna.cookie), &[("csrf", &anna.csrf)]).await;
    let draft = app.store.current_draft(&case).await.unwrap().unwrap();
    let cut: String = draft.text.lines().filter(|l| !l.contains("§ 66") && !l.contains("bis zum")).collect::<Vec<_>>().join("\n");
    let reply = app
        .post_form(&format!("/faelle/{case}/freigabe"), Some(&anna.cookie), &[("csrf", &anna.csrf), ("entwurf", &draft.draft_id.to_string()), ("text", &cut)])
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    let html = reply.text();
    assert!(html.contains("Frist") && html.contains("§ 66 Abs. 3 SGB I"), "{html}");
    // The caseworker's text is kept in the form, and saved as a version.
    assert!(html.contains("Mit freundlichen Grüßen"));
    assert_eq!(app.count("SELECT COUNT(*) FROM letters").await, 0);
}

#[tokio::test]
async fn a_colleague_cannot_edit_a_claimed_case_but_can_take_it_over_on_purpose() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    let ben = app.caseworker("ben").await;
    app.post_form(&format!("/faelle/{case}/uebernehmen"), Some(&anna.cookie), &[("csrf", &anna.csrf)]).await;
    let draft = app.pending_draft(&case).await.to_string();
    let edit = app.post_form(&format!("/faelle/{case}/entwurf"), Some(&ben.cookie), &[("csrf", &ben.csrf), ("entwurf", &draft), ("text", "Ben war hier.")]).await;
    assert_eq!(edit.status, StatusCode::CONFLICT);
    assert!(edit.text().contains("anna"), "{}", edit.text());
    let plain = app.post_form(&format!("/faelle/{case}/uebernehmen"), Some(&ben.cookie), &[("csrf", &ben.csrf)]).await;
    assert_eq!(plain.status, StatusCode::CONFLICT);
    let take = app.post_form(&format!("/faelle/{case}/uebernehmen"), Some(&ben.cookie), &[("csrf", &ben.csrf), ("uebernehmen", "ja")]).await;
    assert_eq!(take.status, StatusCode::SEE_OTHER);
    assert_eq!(app.count("SELECT COUNT(*) FROM cases WHERE assignee = 'ben'").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'case_claimed' AND detail LIKE '%taken_over_from%anna%'").await, 1);
}

#[tokio::test]
async fn a_complete_case_is_closed_and_a_rejection_needs_a_reason() {
    let app = spawn_app().await;
    let complete = app.seed("uvg-11-buergergeld-statt-lohn").await;
    let incomplete = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    for case in [&complete, &incomplete] {
        app.post_form(&format!("/faelle/{case}/uebernehmen"), Some(&anna.cookie), &[("csrf", &anna.csrf)]).await;
    }
    let d = app.pending_draft(&complete).await.to_string();
    let page = app.get(&format!("/faelle/{complete}"), Some(&anna.cookie)).await.text();
    assert!(page.contains("Als vollständig abschließen"), "{page}");
    let closed = app.post_form(&format!("/faelle/{complete}/abschluss"), Some(&anna.cookie), &[("csrf", &anna.csrf), ("entwurf", &d)]).await;
    assert_eq!(closed.location(), Some(format!("/faelle/{complete}?ok=abgeschlossen")));
    assert_eq!(app.count("SELECT COUNT(*) FROM cases WHERE review_status = 'closed_complete'").await, 1);

    let d = app.pending_draft(&incomplete).await.to_string();
    let no_reason = app.post_form(&format!("/faelle/{incomplete}/ablehnung"), Some(&anna.cookie), &[("csrf", &anna.csrf), ("entwurf", &d), ("grund", " ")]).await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_reason.text().contains("Grund"));
    let closing_a_letter = app.post_form(&format!("/faelle/{incomplete}/abschluss"), Some(&anna.cookie), &[("csrf", &anna.csrf), ("entwurf", &d)]).await;
    assert_eq!(closing_a_letter.status, StatusCode::CONFLICT, "a case with missing documents is not closed as complete");
    let rejected = app
        .post_form(&format!("/faelle/{incomplete}/ablehnung"), Some(&anna.cookie), &[("csrf", &anna.csrf), ("entwurf", &d), ("grund", "Antrag wurde telefonisch zurückgenommen")])
        .await;
    assert_eq!(rejected.status, StatusCode::SEE_OTHER);
    let page = app.get(&format!("/faelle/{incomplete}"), Some(&anna.cookie)).await.text();
    assert!(page.contains("telefonisch zurückgenommen"), "the reason shows in the history");
}

#[tokio::test]
async fn the_queue_filters_sorts_and_shows_only_open_cases_by_default() {
    let app = spawn_app().await;
    let incomplete = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let complete = app.seed("uvg-11-buergergeld-statt-lohn").await;
    app.add_user("anna", Role::Caseworker, TENANT).await;
    let anna = app.sign_in("anna").await;
    let all = app.get("/faelle", Some(&anna.cookie)).await.text();
    assert!(all.contains(&incomplete) && all.contains(&complete), "{all}");
    assert!(all.contains("2 Fälle"));
    let only = app.get("/faelle?ergebnis=incomplete", Some(&anna.cookie)).await.text();
    assert!(only.contains(&incomplete) && !only.contains(&complete));
    let mine = app.get("/faelle?bearbeitung=ich", Some(&anna.cookie)).await.text();
    assert!(mine.contains("Keine Fälle für diese Auswahl"));
    let sorted = app.get("/faelle?sortierung=eingang&richtung=ab", Some(&anna.cookie)).await.text();
    assert!(sorted.contains("aria-sort=\"descending\""), "{sorted}");
    let old = app.get("/faelle?aelter_als=36000", Some(&anna.cookie)).await.text();
    assert!(old.contains("Keine Fälle"));
    let found = app.get(&format!("/faelle?suche={}", crate::helpers::urlencode("krämer")), Some(&anna.cookie)).await.text();
    assert!(found.contains(&incomplete) && !found.contains(&complete), "{found}");
    assert!(found.contains("Kerstin Krämer"), "the applicant's name is in the queue");
}

#[tokio::test]
async fn a_page_image_shows_the_page_with_its_evidence_marked() {
    let app = spawn_app().await;
    let case = app.seed("uvg-19-verschluesselt-leer-kaputt").await;
    let anna = app.caseworker("anna").await;
    // minijinja escapes "/" in attributes; browsers read it back as "/".
    let html = app.get(&format!("/faelle/{case}"), Some(&anna.cookie)).await.text().replace("&#x2f;", "/");
    let src = format!("/faelle/{case}/dokumente/0/seiten/1.png");
    assert!(html.contains(&src), "{html}");
    let png = app.get(&src, Some(&anna.cookie)).await;
    assert_eq!(png.status, StatusCode::OK, "{}", png.text());
    assert_eq!(png.headers.get("content-type").unwrap(), "image/png");
    let img = image::load_from_memory(&png.body).unwrap().to_rgb8();
    assert!(img.height() > img.width(), "an upright A4 page");
    // The marker colour (yellow: red and green high, blue low) is on the page.
    let marked = img.pixels().filter(|p| p[0] > 200 && p[1] > 150 && p[2] < 160).count();
    assert!(marked > 500, "{marked} marked pixels");
    let missing = app.get(&format!("/faelle/{case}/dokumente/0/seiten/99.png"), Some(&anna.cookie)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
