//! What is refused before anything runs, and what reaches the program unchanged.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{chown, symlink};

use common::{exists, req, sandbox};
use quorum_sandbox::{ExecError, run};

#[tokio::test]
async fn program_not_on_allowlist_is_refused_and_nothing_runs() {
    let sb = sandbox("allowlist", 0, &["/bin/echo"]);
    let wd = &sb.workdir;

    let mut touch = req("/usr/bin/touch", &["marker"]);
    touch.path_args = vec![0];
    let err = run(&sb.policy, wd, &touch).await.unwrap_err();
    assert!(matches!(err, ExecError::ProgramNotAllowed { .. }), "{err}");
    assert!(!err.is_retryable());

    // A symlink to a binary off the allowlist is judged by what it points to.
    symlink("/usr/bin/touch", wd.join("echo")).unwrap();
    let disguised = req(wd.join("echo").to_str().unwrap(), &["marker"]);
    let err = run(&sb.policy, wd, &disguised).await.unwrap_err();
    assert!(matches!(err, ExecError::ProgramNotAllowed { .. }), "{err}");

    // Relative names would depend on PATH, so they are refused even when they would match.
    let err = run(&sb.policy, wd, &req("echo", &["hi"]))
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::ProgramNotAllowed { .. }), "{err}");

    assert!(!exists(wd, "marker"), "a refused program ran");

    // The allowed program itself still runs, under its allowlisted or its canonical path.
    for program in ["/bin/echo", "/usr/bin/echo"] {
        let out = run(&sb.policy, wd, &req(program, &["ok"])).await.unwrap();
        assert_eq!(out.stdout, b"ok\n");
    }
}

#[tokio::test]
async fn shell_metacharacters_reach_the_program_literally() {
    let sb = sandbox("literal", 1, &["/bin/echo", "/usr/bin/printf"]);
    let wd = &sb.workdir;
    let args = ["a; touch x", "$(id)", "|", "&&", "`touch y`", "> z", "*"];

    let out = run(&sb.policy, wd, &req("/bin/echo", &args)).await.unwrap();
    assert_eq!(out.status, Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        args.join(" ") + "\n"
    );

    let mut printf_args = vec!["%s\\n"];
    printf_args.extend(args);
    let out = run(&sb.policy, wd, &req("/usr/bin/printf", &printf_args))
        .await
        .unwrap();
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines, args);

    for name in ["x", "y", "z"] {
        assert!(!exists(wd, name), "{name} was created: a shell ran");
    }

    // The output is what the service records as an event.
    let out = run(&sb.policy, wd, &req("/bin/echo", &["hi"]))
        .await
        .unwrap();
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["status"], 0);
    assert_eq!(json["killed"], serde_json::Value::Null);
    assert_eq!(json["stdout_truncated"], false);
}

#[tokio::test]
async fn path_args_outside_the_workdir_are_refused() {
    let sb = sandbox("paths", 2, &["/bin/cat", "/usr/bin/touch"]);
    let wd = &sb.workdir;
    fs::create_dir(wd.join("sub")).unwrap();
    fs::write(wd.join("sub/file.txt"), "inside\n").unwrap();
    // The child runs as the sandbox uid, so it may write only where that uid may.
    chown(wd.join("sub"), Some(sb.uid), Some(sb.uid)).unwrap();
    symlink("/etc", wd.join("link")).unwrap();

    for bad in ["../x", "/etc/passwd", "link/passwd", "sub/../../x", "a\0b"] {
        // The first argument is fine; the whole request must still be refused.
        let mut touch = req("/usr/bin/touch", &["marker", bad]);
        touch.path_args = vec![0, 1];
        match run(&sb.policy, wd, &touch).await {
            Err(e @ ExecError::PathOutsideWorkdir { .. }) => {
                assert!(!e.is_retryable());
                let ExecError::PathOutsideWorkdir { arg, .. } = e else {
                    unreachable!()
                };
                assert_eq!(arg, bad);
            }
            other => panic!("{bad:?} not refused: {other:?}"),
        }
        assert!(!exists(wd, "marker"), "ran despite {bad:?}");
    }

    let mut cat = req("/bin/cat", &["sub/file.txt"]);
    cat.path_args = vec![0];
    let out = run(&sb.policy, wd, &cat).await.unwrap();
    assert_eq!(out.stdout, b"inside\n");

    // Output files that do not exist yet may be named.
    let mut touch = req("/usr/bin/touch", &["sub/new.txt"]);
    touch.path_args = vec![0];
    let out = run(&sb.policy, wd, &touch).await.unwrap();
    assert_eq!(
        out.status,
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(exists(wd, "sub/new.txt"));

    let mut bad_index = req("/bin/cat", &["sub/file.txt"]);
    bad_index.path_args = vec![3];
    let err = run(&sb.policy, wd, &bad_index).await.unwrap_err();
    assert!(matches!(err, ExecError::InvalidRequest { .. }), "{err}");
}

#[tokio::test]
async fn environment_is_cleared_to_the_allowlist() {
    let mut sb = sandbox("env", 3, &["/usr/bin/env", "/usr/bin/touch"]);
    sb.policy.env_allowlist = ["FOO".to_owned(), "LANG".to_owned()].into();
    let wd = sb.workdir.clone();

    let mut env = req("/usr/bin/env", &[]);
    env.env = BTreeMap::from([("FOO".to_owned(), "bar baz".to_owned())]);
    let out = run(&sb.policy, &wd, &env).await.unwrap();
    let mut vars: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    vars.sort();
    // Nothing of the service's own environment (HOME, CARGO_*, ...) gets through.
    assert_eq!(
        vars,
        ["FOO=bar baz", "PATH=/usr/local/bin:/usr/bin:/bin"],
        "child saw {vars:?}"
    );

    let mut secret = req("/usr/bin/touch", &["marker"]);
    secret.env = BTreeMap::from([
        ("FOO".to_owned(), "ok".to_owned()),
        ("SECRET".to_owned(), "x".to_owned()),
    ]);
    let err = run(&sb.policy, &wd, &secret).await.unwrap_err();
    match &err {
        ExecError::EnvNotAllowed { name } => assert_eq!(name, "SECRET"),
        other => panic!("{other:?}"),
    }
    assert!(err.is_refusal());
    assert!(!exists(&wd, "marker"));

    // PATH can be set only when allowlisted.
    let mut path = req("/usr/bin/env", &[]);
    path.env = BTreeMap::from([("PATH".to_owned(), "/opt/x".to_owned())]);
    assert!(matches!(
        run(&sb.policy, &wd, &path).await,
        Err(ExecError::EnvNotAllowed { .. })
    ));
    sb.policy.env_allowlist.insert("PATH".to_owned());
    let out = run(&sb.policy, &wd, &path).await.unwrap();
    assert_eq!(out.stdout, b"PATH=/opt/x\n");
}
