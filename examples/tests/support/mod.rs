//! What the example binaries' tests share: temporary folders, running processes whose
//! output lines are watched, and free loopback ports.

#![allow(dead_code, unreachable_pub)]

pub mod readme;

use std::{
    io::{BufRead as _, BufReader},
    net::TcpListener,
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// Longest a test waits for an event from a process or a socket before it fails: a safety
/// net for a hung test on a busy machine, never a measure of speed.
pub const SAFETY_NET: Duration = Duration::from_secs(120);

/// A folder of its own, removed at the end.
pub struct Folder(pub PathBuf);

impl Folder {
    pub fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("palisade-node-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running node, killed when dropped.
pub struct Running {
    pub child: Child,
    pub stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// Starts `program` with `args`, its standard input piped and its output watched.
    pub fn start(program: &str, args: &[&str]) -> Self {
        Self::start_with(program, args, &[])
    }

    /// As [`Self::start`], with `env` added to the environment.
    pub fn start_with(program: &str, args: &[&str], env: &[(&str, &std::path::Path)]) -> Self {
        Self::start_in(program, args, env, &std::env::current_dir().unwrap())
    }

    /// As [`Self::start_with`], in the working folder `dir`.
    pub fn start_in(
        program: &str,
        args: &[&str],
        env: &[(&str, &std::path::Path)],
        dir: &std::path::Path,
    ) -> Self {
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .envs(env.iter().map(|(name, value)| (*name, *value)));
        Self::spawn(command, false)
    }

    /// As [`Self::start`], with its logs at `filter` (`RUST_LOG`) watched as well: standard
    /// error's lines come in among standard output's.
    pub fn start_logged(program: &str, args: &[&str], filter: &str) -> Self {
        let mut command = Command::new(program);
        command.args(args).env("RUST_LOG", filter);
        Self::spawn(command, true)
    }

    fn spawn(mut command: Command, watch_stderr: bool) -> Self {
        let stderr = if watch_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let (sender, lines) = mpsc::channel();
        let watch = |output: Box<dyn std::io::Read + Send>, sender: mpsc::Sender<String>| {
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        };
        watch(Box::new(child.stdout.take().unwrap()), sender.clone());
        if let Some(stderr) = child.stderr.take() {
            watch(Box::new(stderr), sender);
        }
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// The lines containing `text` printed within `within`, up to `count` of them.
    pub fn lines_with(&self, text: &str, count: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut found = Vec::new();
        while found.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => found.push(line),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        found
    }

    /// Whether a line containing `text` is printed within `within`.
    pub fn try_line(&self, text: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Waits up to `within` for a printed line containing `text`.
    pub fn expect_line(&self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {text:?} within {within:?}"),
            }
        }
    }
}

pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A network of `node` processes' files in one folder: a key and a TOML configuration for
/// each node, every node listing all the others, each with its own metrics port.
pub struct NodeFiles {
    pub configs: Vec<PathBuf>,
    pub keys: Vec<String>,
    pub listen: Vec<u16>,
    pub metrics: Vec<u16>,
}

impl NodeFiles {
    /// Writes the files for `count` nodes into `folder`, with `extra` appended to each
    /// configuration's top-level fields.
    pub fn write(node: &str, folder: &Folder, count: usize, extra: &str) -> Self {
        let ports = free_ports(2 * count);
        let keys: Vec<String> = (0..count)
            .map(|i| {
                let output = Command::new(node)
                    .arg("keygen")
                    .arg(folder.0.join(format!("node{i}.key")))
                    .output()
                    .unwrap();
                assert!(output.status.success());
                String::from_utf8(output.stdout).unwrap().trim().to_string()
            })
            .collect();
        let mut configs = Vec::new();
        for i in 0..count {
            let mut config = format!(
                "key_file = \"node{i}.key\"\nlisten = \"127.0.0.1:{}\"\nnamespace = \"node-test\"\n\
                 metrics = \"127.0.0.1:{}\"\npreset = \"local\"\n{extra}\n",
                ports[i],
                ports[count + i]
            );
            for j in (0..count).filter(|&j| j != i) {
                config.push_str(&format!(
                    "[[peers]]\npublic_key = \"{}\"\naddress = \"127.0.0.1:{}\"\n",
                    keys[j], ports[j]
                ));
            }
            let path = folder.0.join(format!("node{i}.toml"));
            std::fs::write(&path, config).unwrap();
            configs.push(path);
        }
        Self {
            configs,
            keys,
            listen: ports[..count].to_vec(),
            metrics: ports[count..].to_vec(),
        }
    }
}

/// The body of `GET /metrics` on `port`, or `None` if nothing answers yet.
pub fn metrics(port: u16) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The body of `GET /metrics` on `port`, waiting (up to `within`, a safety net) until it
/// answers.
pub fn metrics_within(port: u16, within: Duration) -> String {
    let mut text = String::new();
    wait_until(
        &format!("metrics on port {port}"),
        within,
        || match metrics(port) {
            Some(body) => {
                text = body;
                true
            }
            None => false,
        },
    );
    text
}

/// The value of the first sample of `name` (a metric name, with labels if any) in `text`.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(name) && !line.starts_with('#'))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// Polls `condition` every 50 ms until it holds; panics naming `what` after `within`, a
/// generous safety net (the condition is the event waited for).
pub fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (such as `TERM`) to `child` with the system's `kill`.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child` to exit (up to `within`, a safety net) and returns its exit code.
pub fn exit_code(child: &mut Child, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the process did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
