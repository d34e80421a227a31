//! `nachweis audit verify` and `nachweis user` as an operator runs them:
//! the real binary on a SQLite database, before and after someone edits or
//! deletes audit entries behind the application's back.
use std::process::{Command, Output};

fn nachweis(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nachweis"));
    cmd.args(args).env("NACHWEIS_DATABASE_URL", db).env("NACHWEIS_SCHEMAS_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/schemas"));
    match stdin {
        Some(input) => {
            use std::io::Write as _;
            let mut child = cmd.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        }
        None => cmd.output().unwrap(),
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn audit_verify_passes_an_intact_log_and_names_an_altered_or_deleted_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("audit.sqlite").display());
    for name in ["anna", "ben", "cem"] {
        let out = nachweis(&db, &["user", "add", name, "--role", "caseworker"], None);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout(&out).contains("Passwort: "), "a generated password is shown once");
    }
    let ok = nachweis(&db, &["audit", "verify"], None);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));
    assert!(stdout(&ok).contains("unversehrt: 3 Einträge"), "{}", stdout(&ok));

    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    sqlx::raw_sql("DROP TRIGGER audit_log_no_update").execute(&pool).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'jemand' WHERE id = 2").execute(&pool).await.unwrap();
    let altered = nachweis(&db, &["audit", "verify"], None);
    assert_eq!(altered.status.code(), Some(1));
    assert!(stdout(&altered).contains("Eintrag 2"), "{}", stdout(&altered));

    sqlx::query("UPDATE audit_log SET actor = 'admin-cli' WHERE id = 2").execute(&pool).await.unwrap();
    assert_eq!(nachweis(&db, &["audit", "verify"], None).status.code(), Some(0), "restored");
    sqlx::raw_sql("DROP TRIGGER audit_log_no_delete").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM audit_log WHERE id = 3").execute(&pool).await.unwrap();
    let deleted = nachweis(&db, &["audit", "verify"], None);
    assert_eq!(deleted.status.code(), Some(1), "a deleted last entry is found through the chain head");
    assert!(stdout(&deleted).contains("Eintrag 3"), "{}", stdout(&deleted));
}

#[tokio::test]
async fn user_add_refuses_short_passwords_unknown_roles_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("users.sqlite").display());
    let short = nachweis(&db, &["user", "add", "anna", "--password-stdin"], Some("kurz\n"));
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("12"), "{}", String::from_utf8_lossy(&short.stderr));
    let role = nachweis(&db, &["user", "add", "anna", "--role", "chef"], None);
    assert_eq!(role.status.code(), Some(2));
    let ok = nachweis(&db, &["user", "add", "anna", "--role", "auditor", "--tenant", "lk-x", "--password-stdin"], Some("ein-ausreichend-langes-passwort\n"));
    assert!(ok.status.success());
    assert!(!stdout(&ok).contains("Passwort:"), "a given password is not echoed");
    let twice = nachweis(&db, &["user", "add", "anna"], None);
    assert_eq!(twice.status.code(), Some(2));
    let list = stdout(&nachweis(&db, &["user", "list"], None));
    assert!(list.contains("anna") && list.contains("Prüfung") && list.contains("lk-x"), "{list}");
    // The password hash never shows in the listing or the audit log.
    assert!(!list.contains("argon2"));
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let leaked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%argon2%' OR detail LIKE '%ausreichend%'").fetch_one(&pool).await.unwrap();
    assert_eq!(leaked, 0);
}
