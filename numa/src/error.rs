//! The crate's single error type.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong in `gpm-numa`.
///
/// Every message names the input that caused it (the synthetic string, the
/// file path, the PU or node number, ...), so it can be shown to a person as
/// is. No function of this crate panics on bad input; it returns one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// hwloc could not discover the topology of this machine.
    Detect {
        /// What hwloc reported.
        detail: String,
    },
    /// A synthetic description was rejected.
    Synthetic {
        /// The description as given.
        input: String,
        /// Why it was rejected.
        detail: String,
    },
    /// An XML file could not be read or is not a valid hwloc topology.
    XmlFile {
        /// The file as given.
        path: PathBuf,
        /// Why it could not be used (I/O error or parse error).
        detail: String,
    },
    /// An XML string is not a valid hwloc topology.
    XmlParse {
        /// The start of the input (at most 60 characters, one line).
        excerpt: String,
        /// Why it was rejected.
        detail: String,
    },
    /// hwloc could not export the topology to XML.
    Export {
        /// What hwloc reported.
        detail: String,
    },
    /// A PU (OS index) that the topology does not have.
    PuOutOfRange {
        /// The PU asked for.
        pu: usize,
        /// The PUs the topology has, as a list such as `0-63`.
        available: String,
    },
    /// A NUMA node that the topology (or the kernel) does not have.
    NodeOutOfRange {
        /// The node asked for.
        node: usize,
        /// The nodes that exist, as a list such as `0-3`.
        available: String,
    },
    /// [`Placement::Cpus`](crate::Placement::Cpus) with an empty list.
    EmptyCpuList,
    /// [`Placement::Node`](crate::Placement::Node) naming a node without PUs
    /// (a memory-only node).
    NodeWithoutPus {
        /// The node asked for.
        node: usize,
    },
    /// A placement specification string that does not parse.
    PlacementSpec {
        /// The specification as given.
        input: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The current thread could not be pinned to a PU.
    Pin {
        /// The PU asked for.
        pu: usize,
        /// Why it failed.
        detail: String,
    },
    /// Node-bound memory could not be mapped, bound or queried.
    Memory {
        /// What failed, naming the node, size or address involved.
        detail: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Detect { detail } => write!(f, "cannot detect this machine's topology: {detail}"),
            Self::Synthetic { input, detail } => {
                write!(f, "invalid synthetic topology {input:?}: {detail}")
            }
            Self::XmlFile { path, detail } => {
                write!(
                    f,
                    "cannot load topology XML file {}: {detail}",
                    path.display()
                )
            }
            Self::XmlParse { excerpt, detail } => {
                write!(
                    f,
                    "invalid topology XML starting with `{excerpt}`: {detail}"
                )
            }
            Self::Export { detail } => write!(f, "cannot export topology to XML: {detail}"),
            Self::PuOutOfRange { pu, available } => {
                write!(f, "PU {pu} is not in this topology (PUs: {available})")
            }
            Self::NodeOutOfRange { node, available } => {
                write!(f, "NUMA node {node} does not exist (nodes: {available})")
            }
            Self::EmptyCpuList => write!(f, "placement CPU list is empty"),
            Self::NodeWithoutPus { node } => {
                write!(f, "NUMA node {node} has no PUs to place work on")
            }
            Self::PlacementSpec { input, detail } => {
                write!(f, "invalid placement {input:?}: {detail}")
            }
            Self::Pin { pu, detail } => write!(f, "cannot pin thread to PU {pu}: {detail}"),
            Self::Memory { detail } => write!(f, "node-bound memory: {detail}"),
        }
    }
}

impl std::error::Error for Error {}

/// A one-line excerpt of at most `max` characters of `text`, for messages;
/// control characters are escaped (`\0`), quotes are kept as they are.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let line = text.trim_start().lines().next().unwrap_or("");
    let mut out: String = line
        .chars()
        .take(max)
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    if line.chars().count() > max || text.trim_start().lines().nth(1).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_one_short_line() {
        assert_eq!(excerpt("abc", 10), "abc");
        assert_eq!(excerpt("  abcdef", 3), "abc...");
        assert_eq!(excerpt("ab\ncd", 10), "ab...");
        assert_eq!(excerpt("", 10), "");
        assert_eq!(excerpt("a\0\"b\"", 10), "a\\0\"b\"");
    }

    #[test]
    fn messages_name_the_input() {
        let e = Error::Synthetic {
            input: "pack:x".into(),
            detail: "rejected".into(),
        };
        assert!(e.to_string().contains("pack:x"));
        let e = Error::PuOutOfRange {
            pu: 4096,
            available: "0-1".into(),
        };
        assert!(e.to_string().contains("4096") && e.to_string().contains("0-1"));
        let e = Error::XmlFile {
            path: "/no/such.xml".into(),
            detail: "gone".into(),
        };
        assert!(e.to_string().contains("/no/such.xml"));
    }
}
