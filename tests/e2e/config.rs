//! A bad configuration stops the daemon with exit code 2 and names the setting.

use std::process::Command;

use crate::harness::BIN;

fn run(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("CALMONY_REDIS_URL")
        .envs(env.iter().copied())
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_values_exit_2_naming_the_setting() {
    let (code, err) = run(&[("CALMONY_LISTEN", "not-an-address")], &["serve"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("listen") && err.contains("CALMONY_LISTEN"),
        "{err}"
    );

    let (code, err) = run(&[("CALMONY_API_RATE_LIMIT_PER_SECOND", "-5")], &["serve"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("api.rate_limit_per_second"), "{err}");

    let (code, err) = run(&[("CALMONY_REDIS_URL", "http://nope")], &["serve"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("redis.url"), "{err}");

    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[api]\nrate_limit_per_secnd = 5\n").expect("write");
    let (code, err) = run(&[], &["--config", file.to_str().expect("path"), "serve"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("api.rate_limit_per_secnd") && err.contains("unknown"),
        "{err}"
    );

    std::fs::write(&file, "listen = [1, 2\n").expect("write");
    let (code, err) = run(&[], &["--config", file.to_str().expect("path"), "serve"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("TOML"), "{err}");
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/calmony.example.toml"
    );
    let (code, err) = run(&[], &["--config", example, "keys", "--help"]);
    assert_eq!(code, Some(0), "{err}");
}
