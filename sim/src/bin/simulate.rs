//! `simulate`: runs a validator network of palisade nodes on the deterministic simulator and
//! reports how it fared.
//!
//! With no arguments it runs [`Scenario::default`]: 20 members and one outsider for 60
//! simulated seconds through a partition, a crash and random connection resets. Flags change
//! the size, the links, the workload and the faults; `--scenario FILE` reads a whole
//! scenario as JSON (`--print-scenario` shows the format; every duration in it is in seconds
//! and its name ends in `_seconds`). The same seed and scenario give
//! the same run and the same digest.

use clap::Parser;
use palisade_sim::{Action, Fault, Options, Progress, Scenario, Stack, run};
use std::{fmt, path::PathBuf, process::ExitCode, str::FromStr, time::Duration};

/// Run a network of palisade nodes on the deterministic simulator: the real stream and p2p
/// code over links with latency, bandwidth limits and faults, from one seed.
#[derive(Parser, Debug)]
#[command(name = "simulate", version)]
struct Cli {
    /// The runtime's seed: the same seed and scenario give the same run.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start from the scenario in this JSON file instead of the standard one.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Members of the peer set (the standard faults scale with it).
    #[arg(long)]
    nodes: Option<usize>,
    /// Nodes outside the peer set that try to connect and send anyway.
    #[arg(long)]
    outsiders: Option<usize>,
    /// Simulated seconds to run (the standard faults and workload scale with it).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// One-way link latency in milliseconds.
    #[arg(long, value_name = "MS")]
    latency_ms: Option<f64>,
    /// Extra one-way delay per write, uniform up to this many milliseconds.
    #[arg(long, value_name = "MS")]
    jitter_ms: Option<f64>,
    /// Percent of TCP segments every link loses (0 to 50); a lost one stalls its connection
    /// for a retransmission timeout.
    #[arg(long, value_name = "PERCENT", allow_negative_numbers = true)]
    loss_percent: Option<f64>,
    /// Each node's bandwidth each way in bytes per second, or `unlimited`.
    #[arg(long, value_name = "BYTES_PER_SECOND")]
    bandwidth: Option<BandwidthArg>,
    /// Seconds between a node's pings on each connection (the standard scenario pings every
    /// second; `palisade_p2p::Config::recommended` every 5 s). Pings are most of the traffic
    /// of a large, lightly loaded mesh.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    ping_interval: Option<f64>,
    /// Seconds a connection may stay silent before it is closed (standard 10 s; recommended
    /// 30 s).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    max_silence: Option<f64>,
    /// Size of each workload message in bytes.
    #[arg(long, value_name = "BYTES")]
    message_bytes: Option<usize>,
    /// Broadcasts per second by each member.
    #[arg(long, value_name = "PER_SECOND", allow_negative_numbers = true)]
    rate: Option<f64>,
    /// What the members run: `messages` (broadcasts, checked one by one) or `consensus`
    /// (commonware-consensus simplex on every member; `--rate` adds broadcasts beside it).
    #[arg(long, value_enum, default_value_t = WorkloadArg::Messages)]
    workload: WorkloadArg,
    /// The p2p stack every node runs: `palisade`, or the reference, commonware-p2p's `lookup`
    /// with SakeCups, in its `recommended` or `local` preset (for side-by-side figures; the
    /// mesh figures read palisade's metrics and stay empty for the reference).
    #[arg(long, value_enum, default_value_t = StackArg::Palisade)]
    stack: StackArg,
    /// Run without faults.
    #[arg(long, conflicts_with_all = ["partition", "crash", "resets"])]
    no_faults: bool,
    /// Split the members into two halves from FROM to UNTIL seconds, e.g. `20..28`
    /// (replaces the standard faults; repeatable).
    #[arg(long, value_name = "FROM..UNTIL")]
    partition: Vec<Window>,
    /// Crash member NODE at FROM and restart it at UNTIL seconds, e.g. `3@33..38`
    /// (replaces the standard faults; repeatable).
    #[arg(long, value_name = "NODE@FROM..UNTIL")]
    crash: Vec<Targeted<usize>>,
    /// Cut random connections, RATE a second on average, from FROM to UNTIL, e.g.
    /// `2@40..45` (replaces the standard faults; repeatable).
    #[arg(long, value_name = "RATE@FROM..UNTIL", allow_hyphen_values = true)]
    resets: Vec<Targeted<f64>>,
    /// Print the scenario as JSON and exit without running it.
    #[arg(long)]
    print_scenario: bool,
    /// Write the report as JSON to FILE (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Write the run's event log to FILE: one JSON record per line (NDJSON), the same bytes
    /// for the same seed (see `palisade_sim::record` for the format).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Serve a live view of the run at ADDR (for example `127.0.0.1:8080`; port 0 picks a
    /// free one, printed at the start): a page that shows every node and link as the run
    /// goes, then the whole run with a scrubber. Serves until interrupted.
    #[arg(long, value_name = "ADDR")]
    serve: Option<std::net::SocketAddr>,
    /// With `--serve`: simulated seconds per wall-clock second (as fast as possible if not
    /// given); with `--view`, the pace of the replay.
    #[arg(long, value_name = "X")]
    speed: Option<f64>,
    /// Replay the event log FILE (written with `--record`) in the view `--serve` serves,
    /// instead of running anything.
    #[arg(long, value_name = "FILE", requires = "serve")]
    view: Option<PathBuf>,
    /// Print node NODE's Prometheus metrics at the end.
    #[arg(long, value_name = "NODE")]
    metrics: Option<usize>,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

/// `FROM..UNTIL` in seconds.
#[derive(Clone, Copy, Debug)]
struct Window {
    from: Duration,
    until: Duration,
}

/// `VALUE@FROM..UNTIL`.
#[derive(Clone, Copy, Debug)]
struct Targeted<T> {
    value: T,
    window: Window,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StackArg {
    Palisade,
    LookupRecommended,
    LookupLocal,
}

impl From<StackArg> for Stack {
    fn from(stack: StackArg) -> Self {
        match stack {
            StackArg::Palisade => Self::Palisade,
            StackArg::LookupRecommended => Self::LookupRecommended,
            StackArg::LookupLocal => Self::LookupLocal,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum WorkloadArg {
    Messages,
    Consensus,
}

#[derive(Clone, Copy, Debug)]
enum BandwidthArg {
    Unlimited,
    BytesPerSecond(u64),
}

/// A command-line value that does not parse.
#[derive(Debug)]
struct ArgError(String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

fn seconds(text: &str, what: &str) -> Result<Duration, ArgError> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| ArgError(format!("{what} `{text}` is not a number of seconds")))?;
    Duration::try_from_secs_f64(value).map_err(|_| {
        ArgError(format!(
            "{what} `{text}` must be a finite number of at least zero"
        ))
    })
}

impl FromStr for Window {
    type Err = ArgError;

    fn from_str(text: &str) -> Result<Self, ArgError> {
        let (from, until) = text
            .split_once("..")
            .ok_or_else(|| ArgError(format!("`{text}` is not FROM..UNTIL (seconds)")))?;
        let window = Self {
            from: seconds(from, "FROM")?,
            until: seconds(until, "UNTIL")?,
        };
        if window.until < window.from {
            return Err(ArgError(format!("`{text}` ends before it starts")));
        }
        Ok(window)
    }
}

impl<T: FromStr> FromStr for Targeted<T> {
    type Err = ArgError;

    fn from_str(text: &str) -> Result<Self, ArgError> {
        let (value, window) = text
            .split_once('@')
            .ok_or_else(|| ArgError(format!("`{text}` is not VALUE@FROM..UNTIL")))?;
        Ok(Self {
            value: value
                .trim()
                .parse()
                .map_err(|_| ArgError(format!("`{value}` in `{text}` is not a valid value")))?,
            window: window.parse()?,
        })
    }
}

impl FromStr for BandwidthArg {
    type Err = ArgError;

    fn from_str(text: &str) -> Result<Self, ArgError> {
        if text == "unlimited" {
            return Ok(Self::Unlimited);
        }
        text.parse().map(Self::BytesPerSecond).map_err(|_| {
            ArgError(format!(
                "`{text}` is neither a number of bytes per second nor `unlimited`"
            ))
        })
    }
}

fn seconds_flag(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{what} must be a finite number of at least zero, not {value}"))
}

fn milliseconds(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value / 1000.0)
        .map_err(|_| format!("{what} must be a finite number of at least zero, not {value}"))
}

/// The scenario the flags describe.
fn scenario(cli: &Cli) -> Result<Scenario, String> {
    let mut scenario = match &cli.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|error| format!("{} is not a valid scenario: {error}", path.display()))?
        }
        None => {
            let duration = match cli.duration {
                Some(value) => seconds_flag(value, "--duration")?,
                None => Duration::from_secs(60),
            };
            let nodes = cli.nodes.unwrap_or(20);
            match cli.workload {
                WorkloadArg::Messages => Scenario::standard(nodes, duration),
                WorkloadArg::Consensus => Scenario::consensus(nodes, duration),
            }
        }
    };
    if cli.workload == WorkloadArg::Consensus && scenario.consensus.is_none() {
        scenario.consensus = Some(palisade_sim::consensus::Settings::default());
        scenario.workload.messages_per_second = 0.0;
    }
    if cli.scenario.is_some() {
        if let Some(nodes) = cli.nodes {
            scenario.nodes = nodes;
        }
        if let Some(value) = cli.duration {
            scenario.duration = seconds_flag(value, "--duration")?;
        }
    }
    if let Some(outsiders) = cli.outsiders {
        scenario.outsiders = outsiders;
    }
    if let Some(value) = cli.latency_ms {
        scenario.latency = milliseconds(value, "--latency-ms")?;
    }
    if let Some(value) = cli.jitter_ms {
        scenario.jitter = milliseconds(value, "--jitter-ms")?;
    }
    if let Some(value) = cli.ping_interval {
        scenario.timing.ping_interval = seconds_flag(value, "--ping-interval")?;
    }
    if let Some(value) = cli.max_silence {
        scenario.timing.max_silence = seconds_flag(value, "--max-silence")?;
    }
    if let Some(value) = cli.loss_percent {
        scenario.loss_percent = value;
    }
    match cli.bandwidth {
        Some(BandwidthArg::Unlimited) => scenario.bandwidth_bytes_per_second = None,
        Some(BandwidthArg::BytesPerSecond(rate)) => {
            scenario.bandwidth_bytes_per_second = Some(rate);
        }
        None => {}
    }
    if let Some(size) = cli.message_bytes {
        scenario.workload.message_bytes = size;
    }
    if let Some(rate) = cli.rate {
        scenario.workload.messages_per_second = rate;
    }
    let explicit = !cli.partition.is_empty() || !cli.crash.is_empty() || !cli.resets.is_empty();
    if cli.no_faults || explicit {
        scenario.faults.clear();
    }
    let members = scenario.nodes;
    for window in &cli.partition {
        let groups = vec![(0..members / 2).collect(), (members / 2..members).collect()];
        scenario.faults.push(Fault {
            at: window.from,
            action: Action::Partition { groups },
        });
        scenario.faults.push(Fault {
            at: window.until,
            action: Action::Heal,
        });
    }
    for crash in &cli.crash {
        scenario.faults.push(Fault {
            at: crash.window.from,
            action: Action::Crash { node: crash.value },
        });
        scenario.faults.push(Fault {
            at: crash.window.until,
            action: Action::Restart { node: crash.value },
        });
    }
    for resets in &cli.resets {
        scenario.faults.push(Fault {
            at: resets.window.from,
            action: Action::Resets {
                per_second: resets.value,
                until: resets.window.until,
            },
        });
    }
    Ok(scenario)
}

/// The event log's file: records are written as they come; the first write error is kept,
/// and reported once the run is over (the run itself does not stop for it).
struct EventLog {
    state: std::sync::Arc<std::sync::Mutex<LogState>>,
}

struct LogState {
    writer: std::io::BufWriter<std::fs::File>,
    lines: u64,
    error: Option<std::io::Error>,
}

impl EventLog {
    fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let writer = std::io::BufWriter::new(std::fs::File::create(path)?);
        Ok(Self {
            state: std::sync::Arc::new(std::sync::Mutex::new(LogState {
                writer,
                lines: 0,
                error: None,
            })),
        })
    }

    fn sink(&self) -> palisade_sim::RecordFn {
        let state = self.state.clone();
        Box::new(move |record| {
            use std::io::Write as _;
            let mut state = state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if state.error.is_some() {
                return;
            }
            let written = serde_json::to_writer(&mut state.writer, record)
                .map_err(std::io::Error::from)
                .and_then(|()| state.writer.write_all(b"\n"));
            match written {
                Ok(()) => state.lines += 1,
                Err(error) => state.error = Some(error),
            }
        })
    }

    /// Flushes the file; the number of records, or the first error.
    fn finish(self) -> std::io::Result<u64> {
        use std::io::Write as _;
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(error) = state.error.take() {
            return Err(error);
        }
        state.writer.flush()?;
        Ok(state.lines)
    }
}

fn print_progress(progress: &Progress) {
    eprintln!(
        "[{:>7.1} s simulated] {:>6}/{} member pairs connected, {} messages delivered",
        progress.at.as_secs_f64(),
        progress.connected_pairs,
        progress.possible_pairs,
        progress.delivered
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(speed) = cli.speed
        && !(speed.is_finite() && speed > 0.0)
    {
        eprintln!("simulate: --speed must be a number above zero, not {speed}");
        return ExitCode::from(2);
    }
    if let Some(path) = &cli.view {
        return replay(path, &cli);
    }
    let scenario = match scenario(&cli) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("simulate: {error}");
            return ExitCode::from(2);
        }
    };
    if cli.print_scenario {
        println!(
            "{}",
            serde_json::to_string_pretty(&scenario).expect("a scenario serializes")
        );
        return ExitCode::SUCCESS;
    }
    if !cli.quiet {
        eprintln!(
            "simulating {} members and {} outsiders for {:.0} s of simulated time, seed {}",
            scenario.nodes,
            scenario.outsiders,
            scenario.duration.as_secs_f64(),
            cli.seed
        );
    }
    // Where the JSON report goes is checked before the run, not after it.
    let mut json_file = match cli.json.as_deref() {
        Some(path) if path != "-" => match std::fs::File::create(path) {
            Ok(file) => Some(file),
            Err(error) => {
                eprintln!("simulate: cannot write the report to {path}: {error}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    // Like the report's file, the log's is made before the run.
    let log = match &cli.record {
        Some(path) => match EventLog::create(path) {
            Ok(log) => Some(log),
            Err(error) => {
                eprintln!(
                    "simulate: cannot write the event log to {}: {error}",
                    path.display()
                );
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let viewer = match cli.serve.map(start_viewer).transpose() {
        Ok(viewer) => viewer.map(std::sync::Arc::new),
        Err(code) => return code,
    };
    let mut sinks: Vec<palisade_sim::RecordFn> = Vec::new();
    sinks.extend(log.as_ref().map(EventLog::sink));
    if let Some(viewer) = &viewer {
        let viewer = viewer.clone();
        let mut pace = Pace::new(cli.speed);
        sinks.push(Box::new(move |record| {
            pace.wait(record.at_seconds());
            viewer.publish(record);
        }));
    }
    let record = (!sinks.is_empty()).then(|| {
        Box::new(move |record: &palisade_sim::record::Record| {
            for sink in &mut sinks {
                sink(record);
            }
        }) as palisade_sim::RecordFn
    });
    let options = Options {
        progress: (!cli.quiet).then(|| Box::new(print_progress) as Box<_>),
        record,
        metrics_of: cli.metrics,
        stack: cli.stack.into(),
        ..Options::seed(cli.seed)
    };
    let outcome = match run(&scenario, options) {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("simulate: invalid scenario: {error}");
            return ExitCode::from(2);
        }
    };
    let report = &outcome.report;
    if let (Some(log), Some(path)) = (log, &cli.record) {
        match log.finish() {
            Ok(lines) => {
                if !cli.quiet {
                    eprintln!("event log: {lines} records in {}", path.display());
                }
            }
            Err(error) => {
                eprintln!(
                    "simulate: cannot write the event log to {}: {error}",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    let json = serde_json::to_string_pretty(report).expect("a report serializes");
    match (cli.json.as_deref(), json_file.as_mut()) {
        (Some("-"), _) => println!("{json}"),
        (Some(path), Some(file)) => {
            use std::io::Write as _;
            if let Err(error) = writeln!(file, "{json}") {
                eprintln!("simulate: cannot write {path}: {error}");
                return ExitCode::FAILURE;
            }
            println!("{report}");
        }
        _ => println!("{report}"),
    }
    if let Some(text) = &outcome.metrics {
        println!(
            "\n# metrics of node {}\n{text}",
            cli.metrics.unwrap_or_default()
        );
    }
    let mut failed = false;
    if !report.violations.none() {
        eprintln!("simulate: invariants violated: {:?}", report.violations);
        failed = true;
    }
    // On palisade (whose gauges the samples read), a mesh that never formed is a failed run,
    // whatever else held: nothing could have been exchanged as the scenario meant.
    if cli.stack == StackArg::Palisade && report.mesh.first_full_after_seconds.is_none() {
        eprintln!(
            "simulate: the members never formed a full mesh (check the links: latency is in \
             seconds in a scenario file, in milliseconds on the command line)"
        );
        failed = true;
    }
    if let Some(consensus) = &report.consensus {
        for broken in consensus.broken() {
            eprintln!("simulate: consensus invariant broken: {broken}");
            failed = true;
        }
    }
    if let Some(viewer) = viewer {
        viewer.finish();
        serve_until_interrupted(&viewer);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Starts the live view at `address`, saying where (on standard error, so scripts can find a
/// port picked for them).
fn start_viewer(address: std::net::SocketAddr) -> Result<palisade_sim::web::Viewer, ExitCode> {
    match palisade_sim::web::Viewer::start(address) {
        Ok(viewer) => {
            eprintln!("live view at http://{}/", viewer.local_addr());
            Ok(viewer)
        }
        Err(error) => {
            eprintln!("simulate: cannot serve the view at {address}: {error}");
            Err(ExitCode::from(2))
        }
    }
}

/// Keeps the view up once the run is over, until the process is interrupted.
fn serve_until_interrupted(viewer: &palisade_sim::web::Viewer) -> ! {
    eprintln!(
        "the run is over; its view stays at http://{}/ until interrupted (Ctrl-C)",
        viewer.local_addr()
    );
    loop {
        std::thread::park();
    }
}

/// Holds records back so that simulated time runs at `speed` times wall-clock time.
struct Pace {
    speed: Option<f64>,
    started: std::time::Instant,
}

impl Pace {
    fn new(speed: Option<f64>) -> Self {
        Self {
            speed,
            started: std::time::Instant::now(),
        }
    }

    /// Waits until a record at `at_seconds` of simulated time is due.
    fn wait(&mut self, at_seconds: f64) {
        let Some(speed) = self.speed else {
            return;
        };
        // `read` bounds a log's times, but a tiny speed can still stretch them past what a
        // `Duration` holds: then the record is simply never due.
        let due = std::time::Duration::try_from_secs_f64((at_seconds / speed).max(0.0))
            .unwrap_or(std::time::Duration::MAX);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// `--view FILE --serve ADDR`: reads a recorded log and serves it (at `--speed`, or all at
/// once).
fn replay(path: &std::path::Path, cli: &Cli) -> ExitCode {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("simulate: cannot read {}: {error}", path.display());
            return ExitCode::from(2);
        }
    };
    let records = match palisade_sim::record::read(std::io::BufReader::new(file)) {
        Ok(records) => records,
        Err(error) => {
            eprintln!("simulate: {} is not an event log: {error}", path.display());
            return ExitCode::from(2);
        }
    };
    let Some(address) = cli.serve else {
        unreachable!("clap requires --serve with --view");
    };
    let viewer = match start_viewer(address) {
        Ok(viewer) => viewer,
        Err(code) => return code,
    };
    if !cli.quiet {
        eprintln!("replaying {} records of {}", records.len(), path.display());
    }
    let mut pace = Pace::new(cli.speed);
    for record in &records {
        pace.wait(record.at_seconds());
        viewer.publish(record);
    }
    viewer.finish();
    serve_until_interrupted(&viewer)
}
