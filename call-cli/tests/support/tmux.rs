//! A private tmux server for tests of what a person sees in a real terminal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::PROCESS_LIMIT;

/// A private tmux server (its own socket), killed when dropped.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    pub fn available() -> bool {
        Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    pub fn tmux(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket);
        cmd
    }

    /// Starts `shell_command` in a detached 250-column session called `call`.
    pub fn start(socket: &Path, shell_command: &str) -> Tmux {
        let tmux = Tmux {
            socket: socket.to_owned(),
        };
        let status = tmux
            .tmux()
            .args(["new-session", "-d", "-s", "call", "-x", "250", "-y", "60"])
            .arg(shell_command)
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    /// The pane's text, wrapped lines joined, with its scroll-back.
    pub fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-S", "-500", "-t", "call"])
            .output()
            .expect("tmux capture-pane runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the pane shows `text` `times` times.
    pub fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + PROCESS_LIMIT;
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= times {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {text:?} ({times}x):\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "call"])
            .args(keys)
            .status()
            .expect("tmux send-keys runs");
        assert!(status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

/// `s` quoted for `sh`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
