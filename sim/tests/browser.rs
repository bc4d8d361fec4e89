//! The live view in a real browser: headless Chromium (Debian's `chromium`), driven through
//! the DevTools protocol, watches `simulate --serve` run a network through a partition and a
//! crash, and then a replay of the same run's `--record`ed log. On each it waits until the
//! page shows every node, checks that the page's connected pairs, deliveries and digest equal
//! the report's at the end, clicks a node and reads its peers, scrubs back into the partition
//! and sees the links across it cut, and saves screenshots (PNG) under the target folder.

#![cfg(feature = "web")]

mod support;

use headless_chrome::Tab;
use serde_json::Value;
use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
};
use support::browser::{SAFETY_NET, browser, evaluate, number, screenshot, text, wait_until};

const SIMULATE: &str = env!("CARGO_BIN_EXE_simulate");

/// A `simulate` process, killed when dropped.
struct Simulate {
    child: Child,
    address: String,
}

impl Simulate {
    /// Starts `simulate` with `args` (which serve on port 0) and waits for its address.
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(SIMULATE)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("simulate starts");
        let stderr = child.stderr.take().unwrap();
        let (lines, found) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("simulate: {line}");
                let _ = lines.send(line);
            }
        });
        let address = loop {
            let line = found
                .recv_timeout(SAFETY_NET)
                .expect("simulate says where it serves");
            if let Some(rest) = line.strip_prefix("live view at http://") {
                break rest.trim_end_matches('/').to_string();
            }
        };
        Self { child, address }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.address)
    }
}

impl Drop for Simulate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fault of `kind` in the report's scenario: its time.
fn fault_at(report: &Value, kind: &str) -> f64 {
    report["scenario"]["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|fault| fault["kind"] == kind)
        .and_then(|fault| fault["at_seconds"].as_f64())
        .unwrap_or_else(|| panic!("no {kind} in the scenario"))
}

/// Everything the test asks of the page, for a run of `members` members and one outsider
/// whose report is `report`; screenshots are named after `name`.
fn check_the_page(tab: &Tab, url: &str, report: &Value, members: u64, name: &str) {
    tab.navigate_to(url).unwrap();
    tab.wait_until_navigated().unwrap();
    let nodes = members + 1;
    wait_until("every node on the page", || {
        evaluate(tab, "document.querySelectorAll('circle[data-node]').length").as_u64()
            == Some(nodes)
    });
    wait_until("the end of the run on the page", || {
        text(tab, "status") == "finished"
    });

    // The counters equal the report's.
    let pairs = report["connected_pairs"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    assert_eq!(
        number(tab, "connected-links"),
        pairs["connected"].as_u64().unwrap()
    );
    assert_eq!(
        number(tab, "possible-links"),
        pairs["possible"].as_u64().unwrap()
    );
    assert_eq!(
        number(tab, "delivered"),
        report["messages"]["delivered"].as_u64().unwrap()
    );
    assert_eq!(text(tab, "digest"), report["digest"].as_str().unwrap());
    assert_eq!(text(tab, "seed"), report["seed"].to_string());
    assert_eq!(text(tab, "invariants"), "invariants held");
    let connected_lines = evaluate(
        tab,
        "document.querySelectorAll('line[data-link].connected').length",
    );
    assert_eq!(connected_lines, pairs["connected"]);
    screenshot(tab, &format!("{name}-end.png"));

    // A node's detail: its peers, every member but itself, connected at the end.
    tab.find_element("circle[data-node='3']")
        .unwrap()
        .click()
        .unwrap();
    wait_until("node 3's detail", || text(tab, "detail-node") == "3");
    let rows = evaluate(
        tab,
        "document.querySelectorAll('#detail-peers tbody tr').length",
    );
    assert_eq!(rows.as_u64(), Some(members - 1));
    let states = evaluate(
        tab,
        "[...document.querySelectorAll('#detail-peers tbody tr td:nth-child(2)')]\
         .map(cell => cell.textContent.split(' ')[0]).join(',')",
    );
    let states = states.as_str().unwrap().to_string();
    assert!(
        states.split(',').all(|state| state == "connected"),
        "{states}"
    );
    assert!(
        text(tab, "detail-summary").contains("incarnation 1"),
        "node 3 was restarted"
    );
    screenshot(tab, &format!("{name}-node.png"));

    // Back into the partition: the links across the halves are cut (and the outsider's, in
    // no group, are cut from everyone: drawn, but not member links).
    let partition = fault_at(report, "partition");
    let heal = fault_at(report, "heal");
    let middle = (partition + heal) / 2.0;
    evaluate(
        tab,
        &format!(
            "const s = document.getElementById('scrubber'); s.value = '{middle}'; \
             s.dispatchEvent(new Event('input')); true"
        ),
    );
    let halves = (members / 2) * (members - members / 2);
    wait_until("the partition's cut links", || {
        evaluate(
            tab,
            "document.querySelectorAll('line[data-link].partitioned').length",
        )
        .as_u64()
            == Some(halves)
    });
    assert_eq!(number(tab, "cut-links"), halves);
    assert_eq!(
        number(tab, "connected-links"),
        2 * (members / 2) * (members / 2 - 1) / 2
    );
    let shown = text(tab, "scrub-time");
    assert_eq!(shown, format!("{middle:.1} s"));
    screenshot(tab, &format!("{name}-partition.png"));

    // The matrix instead of the graph, and back.
    tab.find_element("#view-matrix").unwrap().click().unwrap();
    let shown = "[document.getElementById('graph').hasAttribute('hidden'), \
                 document.getElementById('matrix').hasAttribute('hidden')].join()";
    wait_until("the matrix", || evaluate(tab, shown) == "true,false");
    screenshot(tab, &format!("{name}-matrix.png"));
    tab.find_element("#view-graph").unwrap().click().unwrap();
    wait_until("the graph", || evaluate(tab, shown) == "false,true");

    // And back to the end.
    tab.find_element("#follow").unwrap().click().unwrap();
    wait_until("the end again", || {
        evaluate(
            tab,
            "document.querySelectorAll('line[data-link].partitioned').length",
        )
        .as_u64()
            == Some(0)
    });
    assert_eq!(
        number(tab, "connected-links"),
        pairs["connected"].as_u64().unwrap()
    );
}

#[test]
fn the_page_shows_a_live_run_and_its_replay_as_the_report_does() {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&folder).unwrap();
    let log = folder.join("run.ndjson");
    let report_path = folder.join("report.json");
    let _ = std::fs::remove_file(&report_path);
    let (log_arg, report_arg) = (log.to_str().unwrap(), report_path.to_str().unwrap());
    // Eight members and an outsider through a partition, a crash and restart of node 3, and
    // resets, at 8 simulated seconds a second, so the page sees it live.
    let live = Simulate::start(&[
        "--serve",
        "127.0.0.1:0",
        "--speed",
        "8",
        "--nodes",
        "8",
        "--duration",
        "30",
        "--seed",
        "4",
        "--record",
        log_arg,
        "--json",
        report_arg,
        "--quiet",
    ]);
    let browser = browser();
    let tab = browser.new_tab().unwrap();
    let report = {
        let mut report = None;
        // The page is checked once the run is over; the report file is written then.
        tab.navigate_to(&live.url()).unwrap();
        wait_until("the report", || {
            report = std::fs::read_to_string(&report_path)
                .ok()
                .and_then(|text| serde_json::from_str::<Value>(&text).ok());
            report.is_some()
        });
        report.unwrap()
    };
    assert_eq!(report["mesh"]["full_at_end"], true);
    check_the_page(&tab, &live.url(), &report, 8, "view-live");
    drop(live);

    let replay = Simulate::start(&["--view", log_arg, "--serve", "127.0.0.1:0", "--quiet"]);
    check_the_page(&tab, &replay.url(), &report, 8, "view-replay");
}
