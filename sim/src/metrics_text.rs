//! Reading the nodes' metrics the way a monitoring system would: from the Prometheus text the
//! runtime encodes.
//!
//! Every node of a run registers its metrics under the `node` prefix with the labels `index`
//! (the node) and `incarnation` (how many times it was restarted before). Sums over nodes
//! drop those two labels and key each sample by its name and remaining labels.

use std::collections::BTreeMap;

/// The prefix every node's metric names start with.
pub(crate) const NODE_PREFIX: &str = "node_";

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sample<'a> {
    /// The name without [`NODE_PREFIX`].
    pub(crate) name: &'a str,
    /// Labels other than `index` and `incarnation`, in order, as `key="value"` joined by `,`.
    pub(crate) labels: String,
    pub(crate) index: Option<usize>,
    pub(crate) incarnation: Option<u32>,
    pub(crate) value: f64,
}

/// The node samples in `text`; comments and other metrics are skipped.
pub(crate) fn node_samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(parse_line)
}

fn parse_line(line: &str) -> Option<Sample<'_>> {
    let line = line.strip_prefix(NODE_PREFIX)?;
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse::<f64>().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let mut kept = Vec::new();
    let (mut index, mut incarnation) = (None, None);
    for label in split_labels(labels) {
        let (key, quoted) = label.split_once('=')?;
        let value = quoted.strip_prefix('"')?.strip_suffix('"')?;
        match key {
            "index" => index = value.parse().ok(),
            "incarnation" => incarnation = value.parse().ok(),
            _ => kept.push(label),
        }
    }
    kept.sort_unstable();
    Some(Sample {
        name,
        labels: kept.join(","),
        index,
        incarnation,
        value,
    })
}

/// Splits `a="x",b="y"` at the commas outside quotes (label values may hold commas).
fn split_labels(labels: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    let mut parts = Vec::new();
    for (at, character) in labels.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&labels[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if start < labels.len() {
        parts.push(&labels[start..]);
    }
    parts.into_iter()
}

/// Sums by (name, labels).
pub(crate) type Totals = BTreeMap<(String, String), f64>;

/// Adds the samples of node `index`'s incarnation `incarnation` in `text` to `totals`.
pub(crate) fn add_node(totals: &mut Totals, text: &str, index: usize, incarnation: u32) {
    for sample in node_samples(text) {
        if sample.index == Some(index) && sample.incarnation == Some(incarnation) {
            *totals
                .entry((sample.name.to_string(), sample.labels))
                .or_default() += sample.value;
        }
    }
}

/// The value of label `key` in `labels` (as kept in [`Totals`]).
pub(crate) fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    split_labels(labels).find_map(|label| {
        let (k, quoted) = label.split_once('=')?;
        (k == key).then(|| quoted.trim_matches('"'))
    })
}

/// The sum of metric `name` over the label sets that have every `(key, value)` of `with`.
pub(crate) fn sum(totals: &Totals, name: &str, with: &[(&str, &str)]) -> f64 {
    totals
        .iter()
        .filter(|((n, labels), _)| {
            n == name
                && with
                    .iter()
                    .all(|(key, value)| label(labels, key) == Some(*value))
        })
        .map(|(_, value)| value)
        .sum()
}

/// The Prometheus text of one node's incarnation, with the `# HELP`/`# TYPE` lines of the
/// families it has samples in.
pub(crate) fn node_text(text: &str, index: usize, incarnation: u32) -> String {
    let mut out = String::new();
    let mut comments: Vec<&str> = Vec::new();
    let mut in_comments = false;
    for line in text.lines() {
        if line.starts_with('#') {
            if !in_comments {
                comments.clear();
                in_comments = true;
            }
            comments.push(line);
            continue;
        }
        in_comments = false;
        let Some(sample) = parse_line(line) else {
            continue;
        };
        if sample.index == Some(index) && sample.incarnation == Some(incarnation) {
            for comment in comments.drain(..) {
                out.push_str(comment);
                out.push('\n');
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP node_connected_peers peers with an open connection.
# TYPE node_connected_peers gauge
node_connected_peers{index=\"0\",incarnation=\"0\"} 3
node_connected_peers{incarnation=\"1\",index=\"1\"} 2
# HELP node_messages_total channel messages.
# TYPE node_messages_total counter
node_messages_total{channel=\"0\",direction=\"outbound\",fate=\"sent\",index=\"0\",incarnation=\"0\"} 10
node_messages_total{fate=\"sent\",channel=\"0\",direction=\"outbound\",index=\"1\",incarnation=\"1\"} 5
node_messages_total{channel=\"0\",direction=\"outbound\",fate=\"sent\",index=\"1\",incarnation=\"0\"} 7
# HELP sim_other something else.
sim_other 1
# EOF
";

    #[test]
    fn samples_are_keyed_without_the_node_labels() {
        let samples: Vec<Sample<'_>> = node_samples(TEXT).collect();
        assert_eq!(samples.len(), 5);
        assert_eq!(samples[1].name, "connected_peers");
        assert_eq!(
            (samples[1].index, samples[1].incarnation),
            (Some(1), Some(1))
        );
        assert_eq!(
            samples[3].labels,
            "channel=\"0\",direction=\"outbound\",fate=\"sent\""
        );
    }

    #[test]
    fn totals_add_one_incarnation_of_one_node() {
        let mut totals = Totals::new();
        add_node(&mut totals, TEXT, 1, 1);
        add_node(&mut totals, TEXT, 0, 0);
        let labels = "channel=\"0\",direction=\"outbound\",fate=\"sent\"";
        assert_eq!(totals[&("messages_total".into(), labels.into())], 15.0);
        assert_eq!(totals[&("connected_peers".into(), String::new())], 5.0);
        assert_eq!(sum(&totals, "messages_total", &[("fate", "sent")]), 15.0);
        assert_eq!(sum(&totals, "messages_total", &[("fate", "received")]), 0.0);
    }

    #[test]
    fn node_text_keeps_the_families_of_that_node() {
        let text = node_text(TEXT, 1, 0);
        assert_eq!(
            text,
            "# HELP node_messages_total channel messages.\n\
             # TYPE node_messages_total counter\n\
             node_messages_total{channel=\"0\",direction=\"outbound\",fate=\"sent\",index=\"1\",incarnation=\"0\"} 7\n\
             # EOF\n"
        );
    }

    #[test]
    fn commas_inside_label_values_do_not_split() {
        let sample = parse_line("node_x{reason=\"a,b\",index=\"2\"} 1").unwrap();
        assert_eq!(sample.labels, "reason=\"a,b\"");
        assert_eq!(sample.index, Some(2));
    }
}
