//! The `node` example's configuration file (TOML), checked field by field.
//!
//! ```toml
//! key_file = "alice.key"          # relative to this file; created by `node keygen`
//! listen = "127.0.0.1:4001"       # the local socket address to bind
//! advertise = "alice.example.com:4001"  # optional: where peers reach us (default: listen)
//! namespace = "my-network"
//! metrics = "127.0.0.1:9101"      # optional: serve Prometheus text at /metrics
//! preset = "recommended"          # or "local" (fast timers for one machine)
//! storage = "alice-data"          # optional; `validator` keeps its consensus journal here
//!
//! [[peers]]
//! public_key = "8a3c…"            # hex, as `node keygen` prints it
//! address = "127.0.0.1:4002"      # or a name: "bob.example.com:4002", "localhost:4002"
//!
//! [[channels]]                    # optional; without any, channel 0 at 100 messages/s
//! id = 0
//! messages_per_second = 100
//! backlog = 1024
//! ```
//!
//! Every error names the file and the field, and says what is wrong. A peer's address may be
//! a DNS name with a port: it is resolved at each dial (by the system's resolver), and each of
//! the addresses it resolves to is tried in turn. `advertise` is what this node tells about
//! itself (it is logged at start, for the other nodes' configurations); it does not change
//! what is bound.

use crate::keyfile;
use commonware_cryptography::ed25519;
use commonware_utils::Hostname;
use palisade_p2p::Ingress;
use serde::Deserialize;
use std::{
    net::SocketAddr,
    num::NonZeroU32,
    path::{Path, PathBuf},
};

/// The largest channel backlog in messages. What they hold in bytes is bounded as well, by
/// palisade-p2p's `max_backlog_bytes` (64 MiB per channel with either preset).
pub const MAX_BACKLOG: usize = 65_536;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("config file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The file is not valid TOML, lacks a field, or has one of the wrong type.
    #[error("config file {path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the field and the line.
        message: String,
    },
    /// A field has a value that cannot be used.
    #[error("config file {path}: field `{field}`: {problem}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The field, as a path such as `peers[1].public_key`.
        field: String,
        /// What is wrong.
        problem: String,
    },
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    key_file: PathBuf,
    listen: String,
    advertise: Option<String>,
    namespace: String,
    metrics: Option<String>,
    preset: Option<String>,
    storage: Option<PathBuf>,
    #[serde(default)]
    peers: Vec<PeerEntry>,
    #[serde(default)]
    channels: Vec<ChannelEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerEntry {
    public_key: String,
    address: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelEntry {
    id: u64,
    messages_per_second: u32,
    backlog: usize,
}

/// Which p2p defaults the node starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// `palisade_p2p::Config::recommended`: a network over the internet.
    Recommended,
    /// `palisade_p2p::Config::local`: fast timers, every peer on one machine.
    Local,
}

/// One channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// Its number.
    pub id: u64,
    /// The per-peer quota each way.
    pub messages_per_second: NonZeroU32,
    /// Received messages that may wait for the application.
    pub backlog: usize,
}

/// A checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// The identity key file, resolved against the config file's folder.
    pub key_file: PathBuf,
    /// Where the node listens.
    pub listen: SocketAddr,
    /// Where peers reach this node: `listen` unless the file says otherwise.
    pub advertise: Ingress,
    /// The network's namespace.
    pub namespace: String,
    /// Where `/metrics` is served, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// The p2p defaults.
    pub preset: Preset,
    /// The other members and their addresses (socket addresses or names with a port).
    pub peers: Vec<(ed25519::PublicKey, Ingress)>,
    /// The channels; the first carries the lines read on standard input.
    pub channels: Vec<Channel>,
    /// The folder for what must outlive the process (a validator's journal), resolved
    /// against the config file's folder.
    pub storage: Option<PathBuf>,
}

impl NodeConfig {
    /// Reads and checks the configuration in `path`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and, where it applies, the field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(path, &text)
    }

    /// Checks the configuration `text`, read from `path`.
    ///
    /// # Errors
    /// As for [`load`](Self::load).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(|error| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: error.to_string().trim_end().replace('\n', " "),
        })?;
        let field = |field: &str, problem: String| ConfigError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            problem,
        };
        let address = |name: &str, value: &str| {
            value.parse::<SocketAddr>().map_err(|_| {
                field(
                    name,
                    format!("`{value}` is not an address such as 127.0.0.1:4001"),
                )
            })
        };
        let ingress = |name: &str, value: &str| {
            ingress(value).ok_or_else(|| {
                field(
                    name,
                    format!(
                        "`{value}` is neither an address such as 127.0.0.1:4001 nor a name \
                         with a port such as node.example.com:4001"
                    ),
                )
            })
        };
        let listen = address("listen", &file.listen)?;
        let advertise = match file.advertise.as_deref() {
            Some(value) => ingress("advertise", value)?,
            None => Ingress::Socket(listen),
        };
        let metrics = file
            .metrics
            .as_deref()
            .map(|value| address("metrics", value))
            .transpose()?;
        if file.namespace.is_empty() {
            return Err(field("namespace", "must not be empty".into()));
        }
        let preset = match file.preset.as_deref() {
            None | Some("recommended") => Preset::Recommended,
            Some("local") => Preset::Local,
            Some(other) => {
                return Err(field(
                    "preset",
                    format!("`{other}` is neither `recommended` nor `local`"),
                ));
            }
        };
        let mut peers = Vec::with_capacity(file.peers.len());
        for (index, peer) in file.peers.iter().enumerate() {
            let key = keyfile::public_key(&peer.public_key)
                .map_err(|problem| field(&format!("peers[{index}].public_key"), problem))?;
            if peers.iter().any(|(other, _)| other == &key) {
                return Err(field(
                    &format!("peers[{index}].public_key"),
                    "listed twice".into(),
                ));
            }
            let address = ingress(&format!("peers[{index}].address"), &peer.address)?;
            peers.push((key, address));
        }
        let mut channels = Vec::with_capacity(file.channels.len().max(1));
        for (index, channel) in file.channels.iter().enumerate() {
            let name = |what: &str| format!("channels[{index}].{what}");
            let messages_per_second = NonZeroU32::new(channel.messages_per_second)
                .ok_or_else(|| field(&name("messages_per_second"), "must be at least 1".into()))?;
            if !(1..=MAX_BACKLOG).contains(&channel.backlog) {
                return Err(field(
                    &name("backlog"),
                    format!("must be between 1 and {MAX_BACKLOG}"),
                ));
            }
            if channels
                .iter()
                .any(|other: &Channel| other.id == channel.id)
            {
                return Err(field(
                    &name("id"),
                    format!("channel {} listed twice", channel.id),
                ));
            }
            channels.push(Channel {
                id: channel.id,
                messages_per_second,
                backlog: channel.backlog,
            });
        }
        if channels.is_empty() {
            channels.push(Channel {
                id: 0,
                messages_per_second: NonZeroU32::new(100).expect("non-zero"),
                backlog: 1024,
            });
        }
        let beside = |relative: PathBuf| match path.parent() {
            Some(folder) if relative.is_relative() => folder.join(&relative),
            _ => relative,
        };
        let key_file = beside(file.key_file);
        let storage = file.storage.map(beside);
        Ok(Self {
            key_file,
            listen,
            advertise,
            namespace: file.namespace,
            metrics,
            preset,
            peers,
            channels,
            storage,
        })
    }
}

/// `value` as an address to dial: a socket address, or a DNS name (RFC 1123) and a port.
pub fn ingress(value: &str) -> Option<Ingress> {
    if let Ok(address) = value.parse::<SocketAddr>() {
        return Some(Ingress::Socket(address));
    }
    let (host, port) = value.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|port| *port != 0)?;
    let host = Hostname::new(host).ok()?;
    Some(Ingress::Dns { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        NodeConfig::parse(Path::new("conf/node.toml"), text)
    }

    fn with(extra: &str) -> String {
        format!("key_file = \"a.key\"\nlisten = \"127.0.0.1:4001\"\nnamespace = \"net\"\n{extra}")
    }

    fn field_error(text: &str) -> (String, String) {
        match parse(text) {
            Err(ConfigError::Field {
                field,
                problem,
                path,
            }) => {
                assert_eq!(path, Path::new("conf/node.toml"));
                (field, problem)
            }
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn a_full_config_parses() {
        let config = parse(&with(&format!(
            "metrics = \"127.0.0.1:9101\"\npreset = \"local\"\nstorage = \"data\"\n\
             [[peers]]\npublic_key = \"{KEY}\"\naddress = \"127.0.0.1:4002\"\n\
             [[channels]]\nid = 7\nmessages_per_second = 50\nbacklog = 10\n"
        )))
        .unwrap();
        assert_eq!(config.key_file, Path::new("conf/a.key"));
        assert_eq!(config.storage.as_deref(), Some(Path::new("conf/data")));
        assert_eq!(config.metrics, Some("127.0.0.1:9101".parse().unwrap()));
        assert_eq!(config.preset, Preset::Local);
        assert_eq!(config.peers.len(), 1);
        assert_eq!(config.channels[0].id, 7);
    }

    #[test]
    fn addresses_may_be_names_with_a_port() {
        let config = parse(&with(&format!(
            "advertise = \"alice.example.com:4001\"\n\
             [[peers]]\npublic_key = \"{KEY}\"\naddress = \"localhost:4002\"\n"
        )))
        .unwrap();
        let dns = |host: &str, port| Ingress::Dns {
            host: Hostname::new(host).unwrap(),
            port,
        };
        assert_eq!(config.advertise, dns("alice.example.com", 4001));
        assert_eq!(config.peers[0].1, dns("localhost", 4002));
        // Without `advertise`, peers are told the listen address.
        let config = parse(&with("")).unwrap();
        assert_eq!(
            config.advertise,
            Ingress::Socket("127.0.0.1:4001".parse().unwrap())
        );
        assert_eq!(
            ingress("[::1]:7"),
            Some(Ingress::Socket("[::1]:7".parse().unwrap()))
        );
        for bad in [
            "localhost",
            "localhost:0",
            "localhost:99999",
            "-bad-.example:1",
            ":4001",
        ] {
            assert_eq!(ingress(bad), None, "{bad}");
        }
        let (field, problem) = field_error(&with("advertise = \"what?:1\""));
        assert_eq!(field, "advertise");
        assert!(problem.contains("what?:1"), "{problem}");
    }

    #[test]
    fn defaults_give_one_channel() {
        let config = parse(&with("")).unwrap();
        assert_eq!(config.channels.len(), 1);
        assert_eq!(config.preset, Preset::Recommended);
        assert_eq!(config.metrics, None);
    }

    #[test]
    fn bad_fields_are_named() {
        let (field, problem) = field_error(&with("").replace("127.0.0.1:4001", "nowhere"));
        assert_eq!(field, "listen");
        assert!(problem.contains("nowhere"));
        let (field, _) = field_error(&with(
            "[[peers]]\npublic_key = \"abcd\"\naddress = \"127.0.0.1:1\"\n",
        ));
        assert_eq!(field, "peers[0].public_key");
        let (field, _) = field_error(&with(&format!(
            "[[peers]]\npublic_key = \"{KEY}\"\naddress = \"x\"\n"
        )));
        assert_eq!(field, "peers[0].address");
        let (field, _) = field_error(&with(
            "[[channels]]\nid = 1\nmessages_per_second = 0\nbacklog = 1\n",
        ));
        assert_eq!(field, "channels[0].messages_per_second");
        let (field, problem) = field_error(&with(
            "[[channels]]\nid = 1\nmessages_per_second = 1\nbacklog = 4611686018427387904\n",
        ));
        assert_eq!(field, "channels[0].backlog");
        assert!(problem.contains("65536"), "{problem}");
        let (field, _) = field_error(&with("preset = \"fast\""));
        assert_eq!(field, "preset");
        let (field, _) = field_error(&with("").replace("\"net\"", "\"\""));
        assert_eq!(field, "namespace");
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        let error = parse("listen = \"127.0.0.1:1\"\nnamespace = \"n\"\n").unwrap_err();
        assert!(matches!(error, ConfigError::Syntax { .. }));
        assert!(error.to_string().contains("key_file"), "{error}");
        let error = parse(&with("colour = \"blue\"")).unwrap_err();
        assert!(error.to_string().contains("colour"), "{error}");
        assert!(error.to_string().contains("conf/node.toml"), "{error}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let error = NodeConfig::load(Path::new("/nonexistent/node.toml")).unwrap_err();
        assert!(matches!(error, ConfigError::Io { .. }));
        assert!(error.to_string().contains("/nonexistent/node.toml"));
    }
}
