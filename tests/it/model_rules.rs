//! The spin model of the record protocol (`verify/record.pml`) names each of its
//! rules after the function of `src/record.rs` it mirrors: every `inline` without the
//! `env_` prefix is one `pub fn` of `impl Record` or a free `pub fn` of `record.rs`,
//! and every such function is a rule of the model. A rule added, renamed or removed
//! on one side only fails here.

use std::collections::BTreeSet;
use std::path::Path;

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rules of `record.rs`: the `pub fn`s of `impl Record` and the free `pub fn`s
/// (not those of `Status` or `LeaseToken`, which are the stored spelling of data).
fn rust_rules(source: &str) -> BTreeSet<String> {
    let mut rules = BTreeSet::new();
    let mut block: Option<&str> = None;
    for line in source.lines() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if line.starts_with("impl ") {
            block = Some(line);
        } else if line == "}" {
            block = None;
        }
        let Some(rest) = line.trim_start().strip_prefix("pub fn ") else {
            continue;
        };
        let name = rest.split(['(', '<']).next().unwrap().to_owned();
        match block {
            None if line.starts_with("pub fn ") => {
                rules.insert(name);
            }
            Some(header) if header.starts_with("impl Record {") => {
                rules.insert(name);
            }
            _ => {}
        }
    }
    rules
}

/// The rules of the model: its `inline`s without the `env_` prefix.
fn model_rules(source: &str) -> BTreeSet<String> {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("inline "))
        .map(|rest| rest.split('(').next().unwrap().trim().to_owned())
        .filter(|name| !name.starts_with("env_"))
        .collect()
}

/// What is in one and not the other, as a message; `None` when they match.
fn mismatch(rust: &BTreeSet<String>, model: &BTreeSet<String>) -> Option<String> {
    let only_rust: Vec<_> = rust.difference(model).collect();
    let only_model: Vec<_> = model.difference(rust).collect();
    if only_rust.is_empty() && only_model.is_empty() {
        return None;
    }
    Some(format!(
        "rules only in src/record.rs: {only_rust:?}; only in verify/record.pml: {only_model:?}"
    ))
}

#[test]
fn the_model_has_exactly_the_rules_of_record_rs() {
    let rust = rust_rules(&read("src/record.rs"));
    let model = model_rules(&read("verify/record.pml"));
    // The protocol's rules, as the module's docs list them.
    for expected in [
        "pending",
        "may_begin_over",
        "conflict_with",
        "lease",
        "already_written",
        "held_by",
        "is_expired",
        "expires_at_for",
    ] {
        assert!(rust.contains(expected), "{expected} not found in record.rs");
    }
    if let Some(message) = mismatch(&rust, &model) {
        panic!("{message}");
    }
}

#[test]
fn each_model_rule_says_which_function_it_mirrors() {
    let model = read("verify/record.pml");
    for rule in model_rules(&model) {
        let named = [format!("/* Record::{rule} */"), format!("/* {rule} */")];
        assert!(
            named
                .iter()
                .any(|n| model.contains(&format!("{n}\ninline {rule}("))),
            "the model's rule {rule} does not name the function it mirrors"
        );
    }
}

#[test]
fn a_rule_on_one_side_only_is_reported() {
    let record = "impl Status {\n    pub fn parse() {}\n}\n\nimpl Record {\n    pub fn held_by(&self) {}\n    fn private() {}\n}\n\npub fn expires_at_for() {}\n";
    let rust = rust_rules(record);
    assert_eq!(
        rust,
        BTreeSet::from(["held_by".to_owned(), "expires_at_for".to_owned()])
    );
    let model = model_rules("inline held_by(t, r) {\n}\ninline env_store_write(j) {\n}\n");
    assert_eq!(
        mismatch(&rust, &model).unwrap(),
        "rules only in src/record.rs: [\"expires_at_for\"]; only in verify/record.pml: []"
    );
    let model = model_rules(
        "inline held_by(t, r) {\n}\ninline expires_at_for(a) {\n}\ninline takeover(x) {\n}\n",
    );
    assert!(mismatch(&rust, &model).unwrap().contains("[\"takeover\"]"));
}
