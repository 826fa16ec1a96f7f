//! The real `doetank serve` binary as a child process, for tests that need several nodes or a
//! `kill -9`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

pub struct ServerProcess {
    child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `doetank serve` on an ephemeral loopback port and waits until it listens.
    pub async fn start(database_url: &str) -> ServerProcess {
        let url = database_url.to_string();
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_doetank"))
                .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
                .env("RUST_LOG", "warn")
                .env("DOETANK_JWT_SECRET", super::app::TEST_SECRET)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start doetank serve");
            let stdout = child.stdout.take().expect("stdout");
            let mut lines = BufReader::new(stdout).lines();
            let addr = loop {
                let line = lines.next().expect("the server exited before listening").expect("read stdout");
                if let Some(url) = line.split("on http://").nth(1) {
                    break url.trim().parse().expect("address");
                }
            };
            // Keep draining stdout so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            ServerProcess { child, addr }
        })
        .await
        .expect("spawn")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// SIGTERM, as `docker stop` and systemd send it; the exit status, once the process has
    /// ended (`None` if it had not within 20 s).
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(sent.is_ok_and(|status| status.success()), "kill -TERM failed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL: no shutdown, no flushing, mid-write.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
