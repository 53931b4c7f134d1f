//! Policy text to validated policies: `*.cedar` files of the policies directory (errors name
//! file and line) and Cedar text attached to users, groups and roles.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{Policy, PolicyId, PolicySet};
use miette::Diagnostic;

use super::schema;

#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("policies directory `{path}`: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The first labelled offset of a diagnostic, if it has one.
fn offset_of(d: &dyn Diagnostic) -> Option<usize> {
    d.labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset())
}

/// A diagnostic's message with its help, on one line.
fn message_of(d: &dyn Diagnostic) -> String {
    match d.help() {
        Some(help) => format!("{d}; {help}"),
        None => d.to_string(),
    }
}

/// Parses one text into policies whose ids are `<prefix>#<@id>` (or `<prefix>#<n>`), checking
/// that it holds no templates and no repeated `@id`. Errors carry `label` and a line.
pub fn parse_text(label: &str, prefix: &str, text: &str) -> Result<Vec<Policy>, PolicyLoadError> {
    let invalid = |line: usize, message: String| PolicyLoadError::Invalid {
        file: label.to_string(),
        line,
        message,
    };
    let set = PolicySet::from_str(text).map_err(|e| {
        let line = offset_of(&e).map(|o| line_of(text, o)).unwrap_or(1);
        invalid(line, message_of(&e))
    })?;
    if set.num_of_templates() > 0 {
        return Err(invalid(
            1,
            "templates (policies with ?principal or ?resource) are not supported".into(),
        ));
    }
    let mut policies: Vec<(usize, Policy)> = set
        .policies()
        .map(|p| {
            let n = p
                .id()
                .to_string()
                .strip_prefix("policy")
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            (n, p.clone())
        })
        .collect();
    // Cedar numbers policies in source order ("policy0", ...); keep that order.
    policies.sort_by_key(|(n, _)| *n);
    let mut out = Vec::with_capacity(policies.len());
    let mut seen = std::collections::HashSet::new();
    for (n, (_, p)) in policies.into_iter().enumerate() {
        let local = p
            .annotation("id")
            .map(str::to_string)
            .unwrap_or_else(|| n.to_string());
        if !seen.insert(local.clone()) {
            let marker = format!("\"{local}\"");
            let line = text
                .match_indices(&marker)
                .nth(1)
                .map(|(o, _)| line_of(text, o))
                .unwrap_or(1);
            return Err(invalid(
                line,
                format!("a second policy with @id(\"{local}\")"),
            ));
        }
        out.push(p.new_id(PolicyId::new(format!("{prefix}#{local}"))));
    }
    Ok(out)
}

/// Validates policies parsed from `text` against the schema; the first error names its line.
pub fn validate_text(label: &str, text: &str, policies: &[Policy]) -> Result<(), PolicyLoadError> {
    let mut set = PolicySet::new();
    for p in policies {
        set.add(p.clone()).map_err(|e| PolicyLoadError::Invalid {
            file: label.to_string(),
            line: 1,
            message: e.to_string(),
        })?;
    }
    let result = schema::validate(&set);
    if let Some(e) = result.validation_errors().next() {
        let line = offset_of(e).map(|o| line_of(text, o)).unwrap_or(1);
        return Err(PolicyLoadError::Invalid {
            file: label.to_string(),
            line,
            message: message_of(e),
        });
    }
    Ok(())
}

/// Parses and validates one policy file's text; ids are `<file name>#<@id or n>`.
pub fn load_text(file_name: &str, text: &str) -> Result<Vec<Policy>, PolicyLoadError> {
    let policies = parse_text(file_name, file_name, text)?;
    validate_text(file_name, text, &policies)?;
    Ok(policies)
}

/// The `*.cedar` files directly in `dir`, sorted by name (`examples/` is not read).
pub fn policy_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyLoadError> {
    let io = |source| PolicyLoadError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "cedar") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads and validates every policy file of `dir`; any error refuses the whole set.
pub fn load_dir(dir: &Path) -> Result<Vec<Policy>, PolicyLoadError> {
    let mut out = Vec::new();
    for path in policy_files(dir)? {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path).map_err(|source| PolicyLoadError::Dir {
            path: path.clone(),
            source,
        })?;
        out.extend(load_text(&name, &text)?);
    }
    Ok(out)
}

/// The shipped default policies (compiled in).
pub fn load_defaults() -> Result<Vec<Policy>, PolicyLoadError> {
    let mut out = Vec::new();
    for (name, text) in schema::DEFAULT_POLICIES {
        out.extend(load_text(name, text)?);
    }
    Ok(out)
}

/// A change stamp of the directory's policy files (names, sizes, modification times).
pub fn dir_stamp(dir: &Path) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
    policy_files(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let len = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            let modified = meta.and_then(|m| m.modified().ok());
            (p, len, modified)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_policies_validate() {
        let p = load_defaults().unwrap();
        assert!(
            p.iter()
                .any(|p| p.id().to_string() == "default.cedar#root-all")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let text = "permit(principal, action, resource);\n\n@id(\"x\")\npermit(principal, action == Sluice::Action::\"s3:Nope\", resource);\n";
        match load_text("f.cedar", text) {
            Err(PolicyLoadError::Invalid { file, line, .. }) => {
                assert_eq!(file, "f.cedar");
                assert_eq!(line, 4);
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
        let text = "permit(principal, action, resource);\npermit(principal, action resource);\n";
        match load_text("g.cedar", text) {
            Err(PolicyLoadError::Invalid { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a parse error, got {other:?}"),
        }
        let typo = "permit(principal is Sluice::User, action, resource)\nwhen { principal.nmae == \"x\" };\n";
        match load_text("h.cedar", typo) {
            Err(PolicyLoadError::Invalid { line, message, .. }) => {
                assert_eq!(line, 2, "{message}");
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
}
