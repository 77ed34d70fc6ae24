//! What a contained child cannot reach (files beside its workdir, the network), what it always
//! has (no-new-privs), and that a machine unable to contain it runs nothing unless the policy
//! says `best_effort`.

use crate::common;

use std::fs;
use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;

use common::{exists, is_root, req, sandbox};
use quorum_sandbox::{ExecError, SandboxMode, Support, containment, run, run_on};

/// Root switches the child to a test uid and makes its network namespace. Without it the test is
/// skipped, except under `CI=true`, where a skip would pass unseen: there it fails and says why.
macro_rules! require_root {
    () => {
        if !is_root() {
            let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
            assert!(
                !ci,
                "CI=true and the sandbox isolation tests are not running as root: they need root \
                 to switch the child to a test uid and give it a network namespace"
            );
            eprintln!("skipped: needs root to switch the child to a test uid");
            return;
        }
    };
}

/// A machine with neither Landlock nor namespaces, as `run_on` is told it.
fn bare_machine() -> Support {
    Support {
        landlock_abi: None,
        netns_unavailable: Some("unshare: Operation not permitted (os error 1)".into()),
    }
}

#[tokio::test]
async fn reads_beside_the_workdir_are_refused() {
    require_root!();
    let sb = sandbox("reads", 4, &["/bin/cat"]);
    // World-readable, so the child's uid alone would not keep it out: only Landlock does.
    let secret = std::env::temp_dir().join(format!("quorum-sandbox-secret-{}", sb.uid));
    fs::write(
        &secret,
        "database_url = postgres://service:password@db/quorum\n",
    )
    .unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(sb.workdir.join("mine.txt"), "mine\n").unwrap();

    let out = run(&sb.policy, &sb.workdir, &req("/bin/cat", &["mine.txt"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"mine\n", "the workdir stays readable");
    assert!(out.landlock);

    let out = run(
        &sb.policy,
        &sb.workdir,
        &req("/bin/cat", &[secret.to_str().unwrap()]),
    )
    .await
    .unwrap();
    fs::remove_file(&secret).unwrap();
    assert_ne!(out.status, Some(0));
    assert!(
        out.stdout.is_empty(),
        "the child read a file beside its workdir"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Permission denied"), "{stderr}");
}

#[tokio::test]
async fn the_child_has_no_network() {
    require_root!();
    let sb = sandbox("network", 5, &["/usr/bin/python3"]);
    let refused = containment(&sb.policy).await.refused;
    assert_eq!(refused, None, "this machine cannot contain the child");
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    tcp.set_nonblocking(true).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let script = format!(
        r#"
import socket
try:
    socket.create_connection(("127.0.0.1", {tcp}), timeout=5)
    print("tcp connected")
except OSError as e:
    print("tcp refused")
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"leak", ("127.0.0.1", {udp}))
    print("udp sent")
except OSError as e:
    print("udp refused")
"#,
        tcp = tcp.local_addr().unwrap().port(),
        udp = udp.local_addr().unwrap().port(),
    );
    let out = run(
        &sb.policy,
        &sb.workdir,
        &req("/usr/bin/python3", &["-c", &script]),
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.network_namespace,
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "tcp refused\nudp refused\n");
    // Loopback delivery is synchronous: had anything been sent, it would be here by now.
    assert_eq!(
        tcp.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let mut buf = [0u8; 16];
    assert_eq!(
        udp.recv_from(&mut buf).map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

#[tokio::test]
async fn a_machine_that_cannot_contain_the_child_runs_nothing_when_strict() {
    let sb = sandbox("strict", 6, &["/usr/bin/touch"]);
    assert_eq!(sb.policy.mode, SandboxMode::Strict, "strict is the default");
    let err = run_on(
        &bare_machine(),
        &sb.policy,
        &sb.workdir,
        &req("/usr/bin/touch", &["marker"]),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ExecError::Uncontained { .. }), "{err:?}");
    assert!(err.is_refusal() && !err.is_retryable());
    let text = err.to_string();
    for named in ["Landlock", "network namespace", "best_effort"] {
        assert!(text.contains(named), "{text} should name {named}");
    }
    assert!(!exists(&sb.workdir, "marker"), "the program ran");
}

#[tokio::test]
async fn best_effort_runs_with_what_there_is_and_always_sets_no_new_privs() {
    let mut sb = sandbox("best-effort", 7, &["/bin/grep"]);
    sb.policy.mode = SandboxMode::BestEffort;
    let r = req("/bin/grep", &["NoNewPrivs", "/proc/self/status"]);
    let out = run_on(&bare_machine(), &sb.policy, &sb.workdir, &r)
        .await
        .unwrap();
    assert!(!out.landlock && !out.network_namespace && !out.landlock_tcp);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "NoNewPrivs:\t1\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
