//! A small ordered tree for recipe values, written out as block YAML (the resolved recipe) or as
//! dotted keys (HyperPod's `--override-parameters`).
//!
//! Only what recipes hold: nested maps of strings, integers, floats and booleans. Strings are
//! always double-quoted (JSON escapes are valid YAML), and floats always carry a `.` and a signed
//! exponent when they have one (`7.0e-7`), so YAML 1.1 loaders (PyYAML, OmegaConf) read them as
//! floats, not strings.

use serde_json::{Map, Value};

/// A recipe value.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A map, keys in insertion order.
    Map(Vec<(String, Node)>),
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// YAML `null` (e.g. `peft_scheme: null`, full-rank training).
    Null,
}

impl Node {
    /// A map from pairs.
    pub fn map<const N: usize>(pairs: [(&str, Node); N]) -> Node {
        Node::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// A string node.
    pub fn s(v: impl Into<String>) -> Node {
        Node::Str(v.into())
    }

    /// The value at a dotted path, e.g. `run.reward_lambda_arn`.
    pub fn get(&self, path: &str) -> Option<&Node> {
        path.split('.').try_fold(self, |node, key| match node {
            Node::Map(pairs) => pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        })
    }

    /// Replaces the value at a dotted path that exists; `false` (and no change) when the path
    /// is not in the tree, so a key the recipe does not have is never added.
    pub fn set(&mut self, path: &str, value: Node) -> bool {
        let mut node = self;
        for key in path.split('.') {
            match node {
                Node::Map(pairs) => match pairs.iter_mut().find(|(k, _)| k == key) {
                    Some((_, v)) => node = v,
                    None => return false,
                },
                _ => return false,
            }
        }
        *node = value;
        true
    }

    /// Block YAML, two-space indents.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        write_yaml(self, 0, &mut out);
        out
    }

    /// Every leaf as `(prefix.dotted.key, value)`, in order.
    pub fn flatten(&self, prefix: &str) -> Vec<(String, Node)> {
        let mut out = Vec::new();
        flatten_into(self, prefix, &mut out);
        out
    }

    /// The leaf as JSON (maps keep no order in `serde_json::Value`).
    pub fn to_json(&self) -> Value {
        match self {
            Node::Map(pairs) => Value::Object(pairs.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<Map<_, _>>()),
            Node::Str(s) => Value::String(s.clone()),
            Node::Int(i) => Value::from(*i),
            Node::Float(f) => Value::from(*f),
            Node::Bool(b) => Value::Bool(*b),
            Node::Null => Value::Null,
        }
    }
}

/// A float as YAML 1.1 reads it: always a `.`, and a signed exponent.
pub fn yaml_float(f: f64) -> String {
    let s = format!("{f:?}"); // shortest round-trip: 0.2, 1.0, 7e-7, 1e20
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let mantissa = if mantissa.contains('.') { mantissa.to_owned() } else { format!("{mantissa}.0") };
            let exp = if exp.starts_with('-') { exp.to_owned() } else { format!("+{exp}") };
            format!("{mantissa}e{exp}")
        }
        None => s,
    }
}

fn scalar(node: &Node) -> String {
    match node {
        Node::Str(s) => serde_json::to_string(s).expect("strings serialize"),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => yaml_float(*f),
        Node::Bool(b) => b.to_string(),
        Node::Null => "null".to_owned(),
        Node::Map(_) => unreachable!("maps are not scalars"),
    }
}

fn write_yaml(node: &Node, indent: usize, out: &mut String) {
    if let Node::Map(pairs) = node {
        for (k, v) in pairs {
            out.push_str(&" ".repeat(indent));
            out.push_str(k);
            out.push(':');
            match v {
                Node::Map(_) => {
                    out.push('\n');
                    write_yaml(v, indent + 2, out);
                }
                _ => {
                    out.push(' ');
                    out.push_str(&scalar(v));
                    out.push('\n');
                }
            }
        }
    }
}

fn flatten_into(node: &Node, prefix: &str, out: &mut Vec<(String, Node)>) {
    match node {
        Node::Map(pairs) => {
            for (k, v) in pairs {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_into(v, &key, out);
            }
        }
        leaf => out.push((prefix.to_owned(), leaf.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_read_as_floats_in_yaml_1_1() {
        assert_eq!(yaml_float(7e-7), "7.0e-7");
        assert_eq!(yaml_float(1e20), "1.0e+20");
        assert_eq!(yaml_float(0.2), "0.2");
        assert_eq!(yaml_float(1.0), "1.0");
    }

    #[test]
    fn block_yaml_and_dotted_keys() {
        let n = Node::map([("run", Node::map([("name", Node::s("a \"b\"")), ("replicas", Node::Int(2))])), ("lr", Node::Float(1e-5))]);
        assert_eq!(n.to_yaml(), "run:\n  name: \"a \\\"b\\\"\"\n  replicas: 2\nlr: 1.0e-5\n");
        let flat: Vec<String> = n.flatten("recipes").into_iter().map(|(k, _)| k).collect();
        assert_eq!(flat, ["recipes.run.name", "recipes.run.replicas", "recipes.lr"]);
        assert_eq!(n.get("run.replicas"), Some(&Node::Int(2)));
    }

    #[test]
    fn set_replaces_only_existing_keys_and_null_is_yaml_null() {
        let mut n = Node::map([("peft", Node::map([("peft_scheme", Node::s("lora"))]))]);
        assert!(n.set("peft.peft_scheme", Node::Null));
        assert!(!n.set("peft.lora_tuning.alpha", Node::Int(32)));
        assert!(!n.set("peft.peft_scheme.x", Node::Int(1)));
        assert_eq!(n.to_yaml(), "peft:\n  peft_scheme: null\n");
    }
}
