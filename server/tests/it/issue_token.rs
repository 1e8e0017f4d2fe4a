//! `pm-server issue-token` through the real binary: a lifetime outside 1..=36500 days is refused
//! with a clear error instead of wrapping into an expiry in the past; inside it, the token verifies.
use std::process::Command;

const SECRET: &str = "issue-token-test-secret-of-32-chars!";
const USER: &str = "00000000-0000-4000-8000-000000000077";

fn issue(ttl_days: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pm-server"))
        .args(["issue-token", "--user-id", USER])
        .arg(format!("--ttl-days={ttl_days}"))
        .env("PM_AUTH_JWT_SECRET", SECRET)
        .env("PM_LOG", "error")
        .output()
        .expect("run pm-server issue-token")
}

#[test]
fn ttl_days_outside_one_to_36500_are_refused() {
    for bad in ["0", "-1", "36501", "106751991167300", &i64::MAX.to_string()] {
        let out = issue(bad);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--ttl-days {bad}: {stderr}");
        assert!(out.stdout.is_empty(), "--ttl-days {bad} printed a token");
        assert!(
            stderr.contains("--ttl-days must be between 1 and 36500"),
            "--ttl-days {bad}: {stderr}"
        );
    }
    for good in ["1", "36500"] {
        let out = issue(good);
        assert!(out.status.success(), "--ttl-days {good}: {out:?}");
        let token = String::from_utf8(out.stdout).expect("utf-8");
        let identity = pm_server::auth::verify(SECRET, token.trim()).expect("a valid token");
        assert_eq!(identity.user_id, USER);
    }
}
