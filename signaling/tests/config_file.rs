//! `call-signaling --config FILE` through the real binary: the file's values are used, the
//! environment overrides the file and a flag overrides the environment; bad files are refused
//! with one clear line and exit status 2.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_call-signaling");

/// Bound for the binary to start or fail (never a timing assertion).
const SOON: Duration = Duration::from_secs(20);

fn write_config(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join("call-signaling.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
    path
}

/// The binary with a clean environment plus `env`.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts the binary and returns it with the URL it printed.
async fn url_of(args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let mut child = command(args, env).spawn().expect("the binary starts");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    tokio::time::timeout(SOON, stdout.read_line(&mut line))
        .await
        .expect("the URL line arrives")
        .unwrap();
    if line.is_empty() {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err).await;
        panic!("the server did not start: {err}");
    }
    (child, line.trim().to_owned())
}

/// Runs the binary expecting it to refuse to start; returns its stderr.
async fn refused(args: &[&str]) -> String {
    let out = tokio::time::timeout(SOON, command(args, &[]).output())
        .await
        .expect("the binary exits")
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        out.stdout.is_empty(),
        "a refused config must not start the server"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ws://HOST:PORT/ws` → `HOST`.
fn host(url: &str) -> &str {
    let rest = url.strip_prefix("ws://").unwrap();
    rest.rsplit_once(':').unwrap().0
}

const BASE: &str = "listen = \"127.0.0.1:0\"\nno-turn = true\nserver-name = \"file.example\"\n";

#[tokio::test]
async fn file_then_environment_then_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), BASE, 0o644);
    let config = path.to_str().unwrap();

    let (mut child, url) = url_of(&["--config", config], &[]).await;
    assert_eq!(host(&url), "file.example", "{url}");
    child.kill().await.unwrap();

    let env = [("CALL_SERVER_NAME", "env.example")];
    let (mut child, url) = url_of(&["--config", config], &env).await;
    assert_eq!(
        host(&url),
        "env.example",
        "the environment overrides the file: {url}"
    );
    child.kill().await.unwrap();

    let args = ["--config", config, "--server-name", "flag.example"];
    let (mut child, url) = url_of(&args, &env).await;
    assert_eq!(
        host(&url),
        "flag.example",
        "a flag overrides the environment: {url}"
    );
    child.kill().await.unwrap();

    // The file may also be named by the environment.
    let (mut child, url) = url_of(&[], &[("CALL_SIGNALING_CONFIG", config)]).await;
    assert_eq!(host(&url), "file.example", "{url}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn metrics_listen_from_the_file_serves_metrics() {
    let dir = tempfile::tempdir().unwrap();
    // A free port: bound, then released for the server (loopback only).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!("{BASE}metrics-listen = \"127.0.0.1:{port}\"\n");
    let path = write_config(dir.path(), &text, 0o644);
    let (mut child, _url) = url_of(&["--config", path.to_str().unwrap()], &[]).await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the metrics listener accepts");
    tokio::io::AsyncWriteExt::write_all(
        &mut stream,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut page = String::new();
    tokio::time::timeout(SOON, stream.read_to_string(&mut page))
        .await
        .unwrap()
        .unwrap();
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("call_signaling_logins_total{result=\"ok\"} 0"),
        "{page}"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn bad_files_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &format!("{BASE}listen-adress = 1\n"), 0o644);
    let err = refused(&["--config", path.to_str().unwrap()]).await;
    assert!(err.contains("unknown key `listen-adress`"), "{err}");

    let path = write_config(
        dir.path(),
        &format!("{BASE}turn-secret = \"s3cret\"\n"),
        0o644,
    );
    let err = refused(&["--config", path.to_str().unwrap()]).await;
    assert!(err.contains("chmod 600"), "{err}");
    assert!(
        !err.contains("s3cret"),
        "the secret must not be echoed: {err}"
    );

    let path = write_config(dir.path(), &format!("{BASE}rate = \"fast\"\n"), 0o644);
    let err = refused(&["--config", path.to_str().unwrap()]).await;
    assert!(
        err.contains("config file") && err.contains("--rate"),
        "{err}"
    );

    let missing = dir.path().join("missing.toml");
    let out = command(&["--config", missing.to_str().unwrap()], &[])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the config file"));
}

#[cfg(unix)]
#[tokio::test]
async fn a_secret_in_a_private_file_is_used() {
    use signaling::client::{Client, ClientOptions};
    use signaling::identity::Identity;
    use signaling::turn_credentials::{CredentialPolicy, TurnSecret};

    let dir = tempfile::tempdir().unwrap();
    let text = "listen = \"127.0.0.1:0\"\nno-turn = true\n\
                turn-url = [\"turn:127.0.0.1:3478\"]\nturn-secret = \"a private secret\"\n";
    let path = write_config(dir.path(), text, 0o600);
    let (mut child, url) = url_of(&["--config", path.to_str().unwrap()], &[]).await;
    let client = Client::connect(&url, Identity::generate(), ClientOptions::default())
        .await
        .unwrap();
    let creds = client.turn_credentials().await.unwrap();
    assert_eq!(creds.urls, ["turn:127.0.0.1:3478"]);
    let secret = TurnSecret::new(b"a private secret".to_vec()).unwrap();
    let policy = CredentialPolicy::new(secret, 600, 3600).unwrap();
    assert_eq!(
        creds.password,
        policy.password_for(&creds.username),
        "the credentials are made with the file's secret"
    );
    client.close().await;
    child.kill().await.unwrap();
}
