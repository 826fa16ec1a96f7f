//! The `doetank` binary itself.

use std::process::Command;

use crate::both_backends;
use crate::support::TestDb;

both_backends!(migrate_is_idempotent_and_reports_the_head);

async fn migrate_is_idempotent_and_reports_the_head(db: &TestDb) {
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_doetank"))
            .args(["migrate", "--database-url", &db.url])
            .output()
            .expect("run doetank");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("log head at position 0"), "{stdout}");
    }
}

#[test]
fn an_unknown_database_scheme_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_doetank"))
        .args(["migrate", "--database-url", "mysql://localhost/x"])
        .output()
        .expect("run doetank");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}
