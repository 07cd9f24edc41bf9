//! [`Document`]: an INI file kept as its lines, so a change can be written back into the user's
//! own file with everything else in it as it was.
//!
//! ZLMediaKit's `setServerConfig` rewrites `config.ini` from its in-memory table, which loses
//! the user's comments and order. Here [`Document::set`] edits one line (or inserts one where
//! its section is) and [`Document::render`] gives the file back byte for byte otherwise: its
//! comments, blank lines, key order, unknown sections and keys, duplicate keys, byte order
//! mark and line endings (`\n` or `\r\n`) all stay.
//!
//! The same parser feeds [`Config::from_document`](crate::Config::from_document), and
//! [`Config::to_ini`](crate::Config::to_ini) is built with [`Document::set`]'s insertion rule,
//! so reading, writing back and generating `conf/config.ini` cannot disagree on the format.

use crate::table::{Key, SECTIONS};
use crate::{Config, ConfigError};
use std::fmt;

/// An INI file as its lines. Parse with [`Document::parse`], change with [`Document::set`],
/// write out with [`Document::render`].
///
/// `Debug` shows only the origin and the number of lines: the text may hold credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Document {
    /// Where the text came from (the file's path), for error messages.
    origin: String,
    /// The text started with a UTF-8 byte order mark (Windows editors write one).
    bom: bool,
    lines: Vec<Line>,
    /// The line ending inserted lines get: the file's first one, else `\n`.
    newline: &'static str,
}

#[derive(Clone, PartialEq, Eq)]
struct Line {
    /// The line as written, without its ending.
    text: String,
    /// `\n`, `\r\n`, or empty for a last line that has none.
    end: &'static str,
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    /// Blank, or a `#` / `;` comment.
    Other,
    /// `[name]`, the name trimmed.
    Section(String),
    /// `key=value`, both trimmed.
    Entry { key: String, value: String },
}

/// One `key=value` line, with the section it is in (`None` before the first header).
pub(crate) struct Entry<'a> {
    pub(crate) section: Option<&'a str>,
    pub(crate) key: &'a str,
    pub(crate) value: &'a str,
    /// 1-based line number.
    pub(crate) line: usize,
}

impl Document {
    /// Parses INI text: `[section]` headers, `key=value` lines, blank lines and `#` or `;`
    /// comments; anything else is a [`ConfigError::Syntax`] naming `origin` and the line.
    /// Keys are not looked up here: unknown ones are kept (and warned about by
    /// [`Config::from_document`](crate::Config::from_document)).
    pub fn parse(text: &str, origin: &str) -> Result<Document, ConfigError> {
        let (bom, text) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut lines = Vec::new();
        for (index, raw) in text.split_inclusive('\n').enumerate() {
            let (body, end) = match raw.strip_suffix('\n') {
                Some(body) => match body.strip_suffix('\r') {
                    Some(body) => (body, "\r\n"),
                    None => (body, "\n"),
                },
                None => (raw, ""),
            };
            let line = body.trim();
            let syntax = || ConfigError::Syntax {
                origin: origin.to_owned(),
                line: index + 1,
                text: line.to_owned(),
            };
            let kind = if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                Kind::Other
            } else if let Some(rest) = line.strip_prefix('[') {
                let name = rest.strip_suffix(']').ok_or_else(syntax)?.trim();
                Kind::Section(name.to_owned())
            } else {
                let (key, value) = line.split_once('=').ok_or_else(syntax)?;
                if key.trim().is_empty() {
                    return Err(syntax());
                }
                Kind::Entry {
                    key: key.trim().to_owned(),
                    value: value.trim().to_owned(),
                }
            };
            lines.push(Line {
                text: body.to_owned(),
                end,
                kind,
            });
        }
        let newline = match lines.first() {
            Some(line) if line.end == "\r\n" => "\r\n",
            _ => "\n",
        };
        Ok(Document {
            origin: origin.to_owned(),
            bom,
            lines,
            newline,
        })
    }

    /// A document of comment lines only (`# ` prefixed), for a file written from scratch.
    pub(crate) fn comments(origin: &str, comments: &[&str]) -> Document {
        let mut document = Document {
            origin: origin.to_owned(),
            bom: false,
            lines: Vec::new(),
            newline: "\n",
        };
        for comment in comments {
            document.push(format!("# {comment}"), Kind::Other);
        }
        document
    }

    /// Where the text came from, as given to [`Document::parse`].
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Sets `section.key` (case-insensitive) to `value` (trimmed), after checking that the
    /// value parses as that key's type:
    /// - the key's last line in the file (the one that wins when read) is rewritten, keeping
    ///   what precedes its value (indentation, the key's spelling, spaces around `=`);
    /// - a key not in the file is inserted, under a `# doc` comment, after the last key of
    ///   its section's last `[section]` block;
    /// - a section not in the file is appended at the end, with its doc comment.
    ///
    /// Every other line stays as it was.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), ConfigError> {
        let key = crate::table::key_at(path)?;
        let value = value.trim();
        key.apply(&mut Config::default(), value, || {
            format!("{} set", self.origin)
        })?;
        self.set_text(key, value);
        Ok(())
    }

    /// [`Document::set`] without the checks: `value` is known to be good.
    pub(crate) fn set_text(&mut self, key: &Key, value: &str) {
        let mut section = None;
        let mut last_entry = None;
        let mut header = None;
        let mut block_last_entry = None;
        for (index, line) in self.lines.iter().enumerate() {
            match &line.kind {
                Kind::Section(name) => {
                    section = Some(name.as_str());
                    if name.eq_ignore_ascii_case(key.section) {
                        header = Some(index);
                        block_last_entry = None;
                    }
                }
                Kind::Entry { key: name, .. } => {
                    let here = section.is_some_and(|s| s.eq_ignore_ascii_case(key.section));
                    if here {
                        block_last_entry = Some(index);
                        if name.eq_ignore_ascii_case(key.name) {
                            last_entry = Some(index);
                        }
                    }
                }
                Kind::Other => {}
            }
        }
        let entry = Kind::Entry {
            key: key.name.to_owned(),
            value: value.to_owned(),
        };
        if let Some(line) = last_entry.and_then(|index| self.lines.get_mut(index)) {
            // Everything up to the value: `  port = ` stays `  port = `.
            let keep = match line.text.split_once('=') {
                Some((before, after)) => {
                    let spaces = after.len() - after.trim_start().len();
                    before.len() + 1 + spaces
                }
                None => 0,
            };
            let prefix = line.text.get(..keep).unwrap_or_default();
            line.text = format!("{prefix}{value}");
            if let Kind::Entry { value: v, .. } = &mut line.kind {
                *v = value.to_owned();
            }
            return;
        }
        let key_lines = [
            (format!("# {}", key.doc), Kind::Other),
            (format!("{}={value}", key.name), entry),
        ];
        match block_last_entry.or(header) {
            Some(after) => {
                // The line we insert after may be the last one, without an ending.
                let newline = self.newline;
                if let Some(line) = self.lines.get_mut(after) {
                    if line.end.is_empty() {
                        line.end = newline;
                    }
                }
                for (offset, (text, kind)) in key_lines.into_iter().enumerate() {
                    let line = Line {
                        text,
                        end: newline,
                        kind,
                    };
                    self.lines.insert(after + 1 + offset, line);
                }
            }
            None => {
                let blank_before = self.lines.last().is_some_and(|l| !l.text.trim().is_empty());
                if blank_before {
                    self.push(String::new(), Kind::Other);
                }
                let doc = SECTIONS
                    .iter()
                    .find(|(name, _)| *name == key.section)
                    .map_or("", |(_, doc)| *doc);
                self.push(format!("# {doc}"), Kind::Other);
                self.push(
                    format!("[{}]", key.section),
                    Kind::Section(key.section.to_owned()),
                );
                for (text, kind) in key_lines {
                    self.push(text, kind);
                }
            }
        }
    }

    /// Appends a line, first ending the last one if it had no line ending.
    fn push(&mut self, text: String, kind: Kind) {
        let newline = self.newline;
        if let Some(last) = self.lines.last_mut() {
            if last.end.is_empty() {
                last.end = newline;
            }
        }
        self.lines.push(Line {
            text,
            end: newline,
            kind,
        });
    }

    /// The text: what was parsed, with the changes made since.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.bom {
            out.push('\u{feff}');
        }
        for line in &self.lines {
            out.push_str(&line.text);
            out.push_str(line.end);
        }
        out
    }

    /// Every `key=value` line, in file order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        let mut section = None;
        self.lines
            .iter()
            .enumerate()
            .filter_map(move |(index, line)| match &line.kind {
                Kind::Section(name) => {
                    section = Some(name.as_str());
                    None
                }
                Kind::Entry { key, value } => Some(Entry {
                    section,
                    key,
                    value,
                    line: index + 1,
                }),
                Kind::Other => None,
            })
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("origin", &self.origin)
            .field("lines", &self.lines.len())
            .finish_non_exhaustive()
    }
}
