//! German words for the ids that verdicts, statuses and roles are stored
//! as: one place, used by the pages, the API's readable fields and the CLI.
use chrono::{DateTime, Utc};

/// A bundle verdict (`complete`, `incomplete`, `needs_review`).
pub fn verdict(v: &str) -> &'static str {
    match v {
        "complete" => "vollständig",
        "incomplete" => "unvollständig",
        "needs_review" => "prüfen",
        _ => "unbekannt",
    }
}

/// A requirement verdict.
pub fn requirement(v: &str) -> &'static str {
    match v {
        "satisfied" => "liegt vor",
        "missing" => "fehlt",
        "expired" => "zu alt",
        "uncertain" => "unklar",
        "not_applicable" => "nicht nötig",
        _ => "unbekannt",
    }
}

/// A case's review status.
pub fn review_status(v: &str) -> &'static str {
    match v {
        "pending_review" => "wartet auf Prüfung",
        "approved" => "Schreiben freigegeben",
        "rejected" => "abgelehnt",
        "closed_complete" => "als vollständig abgeschlossen",
        "superseded" => "ersetzt",
        _ => "unbekannt",
    }
}

/// A draft version's status.
pub fn draft_status(v: &str) -> &'static str {
    match v {
        "pending_review" => "wartet auf Entscheidung",
        "approved" => "freigegeben",
        "rejected" => "abgelehnt",
        "superseded" => "ersetzt",
        _ => "unbekannt",
    }
}

/// A draft's kind.
pub fn draft_kind(v: &str) -> &'static str {
    match v {
        "letter" => "Nachforderungsschreiben",
        "ready_for_processing" => "Prüfvermerk: vollständig",
        "clarification" => "Prüfvermerk: Klärung nötig",
        _ => "Entwurf",
    }
}

/// Where a segment's text came from.
pub fn text_source(v: &str) -> &'static str {
    match v {
        "text_layer" => "Textebene der PDF",
        "ocr" => "Texterkennung (OCR)",
        "mixed" => "Textebene und Texterkennung",
        _ => "kein Text",
    }
}

/// An audit action.
pub fn audit_action(v: &str) -> &str {
    match v {
        "bundle_checked" => "Bündel geprüft",
        "draft_created" => "Entwurf erstellt",
        "case_claimed" => "Fall übernommen",
        "case_released" => "Fall zurückgegeben",
        "draft_edited" => "Entwurf bearbeitet",
        "segment_corrected" => "Dokumenttyp korrigiert",
        "draft_approved" => "Schreiben freigegeben",
        "draft_rejected" => "Entwurf abgelehnt",
        "case_closed_complete" => "als vollständig abgeschlossen",
        "signed_in" => "angemeldet",
        "sign_in_failed" => "Anmeldung fehlgeschlagen",
        "sign_in_locked" => "Anmeldung gesperrt (zu viele Fehlversuche)",
        "audit_exported" => "Protokoll exportiert",
        "api_token_created" => "API-Token erstellt",
        other => other,
    }
}

/// A date as `20.11.2026`.
pub fn date(at: DateTime<Utc>) -> String {
    at.format("%d.%m.%Y").to_string()
}

/// A moment as `20.11.2026, 09:14 Uhr` (UTC; the server does not guess zones).
pub fn moment(at: DateTime<Utc>) -> String {
    at.format("%d.%m.%Y, %H:%M UTC").to_string()
}

/// How long ago, in whole days, in words.
pub fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    match (now - at).num_days() {
        d if d <= 0 => "heute".into(),
        1 => "seit 1 Tag".into(),
        d => format!("seit {d} Tagen"),
    }
}
