//! `quorum keys` against a test database: a key is printed once, listed without its secret, and
//! revoked; revoking what does not exist fails.

use tokio::process::Command;

async fn quorum(db: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["--database-url", db, "--json"])
        .args(args)
        .output()
        .await?)
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let out = quorum(
        &db.url,
        &[
            "keys",
            "create",
            "--tenant",
            "acme",
            "--role",
            "publisher",
            "--role",
            "auditor",
        ],
    )
    .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let key = made["key"].as_str().expect("the key, once");
    assert!(key.starts_with("qk_"));
    assert_eq!(made["roles"], serde_json::json!(["auditor", "publisher"]));

    let out = quorum(&db.url, &["keys", "list", "--tenant", "acme"]).await?;
    let listed = String::from_utf8(out.stdout)?;
    assert!(listed.contains(made["prefix"].as_str().unwrap()));
    assert!(!listed.contains(key), "list shows no secret");

    let bad_role = quorum(
        &db.url,
        &["keys", "create", "--tenant", "acme", "--role", "admin"],
    )
    .await?;
    assert!(!bad_role.status.success());
    let out = quorum(
        &db.url,
        &["keys", "revoke", made["prefix"].as_str().unwrap()],
    )
    .await?;
    assert!(out.status.success());
    let again = quorum(
        &db.url,
        &["keys", "revoke", made["prefix"].as_str().unwrap()],
    )
    .await?;
    assert!(!again.status.success(), "nothing left to revoke");
    let out = quorum(&db.url, &["keys", "list"]).await?;
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert!(listed[0]["revoked_at"].is_string());
    Ok(())
}

#[tokio::test]
async fn revoking_the_stack_key_removes_the_file_that_offered_it() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let dir = std::env::temp_dir().join(format!("quorum-keys-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let data_dir = dir.to_str().unwrap().to_owned();
    let create = [
        "--data-dir",
        data_dir.as_str(),
        "keys",
        "create",
        "--tenant",
        "default",
    ];
    let made = quorum(&db.url, &[&create[..], &["--role", "operator"]].concat()).await?;
    let made: serde_json::Value = serde_json::from_slice(&made.stdout)?;
    let key = made["key"].as_str().unwrap();
    std::fs::write(dir.join("api-key"), key)?;
    // Another key revoked: the stack's stays.
    let other = quorum(&db.url, &[&create[..], &["--role", "auditor"]].concat()).await?;
    let other: serde_json::Value = serde_json::from_slice(&other.stdout)?;
    let prefix = other["prefix"].as_str().unwrap();
    let out = quorum(
        &db.url,
        &["--data-dir", &data_dir, "keys", "revoke", prefix],
    )
    .await?;
    assert!(out.status.success());
    assert!(dir.join("api-key").exists());
    // The stack's own: its file goes, and the operator is told what to do.
    let prefix = made["prefix"].as_str().unwrap();
    let out = quorum(
        &db.url,
        &["--data-dir", &data_dir, "keys", "revoke", prefix],
    )
    .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(answer["stack_key_removed"], true);
    assert!(!dir.join("api-key").exists());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
