//! How values are shown inside error messages: a compact, JavaScript-like
//! rendering (`123n` for int64, `Infinity`, `{a: "x"}`) that users recognise
//! from Convex's own messages.

use std::fmt;

use base64::Engine;

use crate::json::BASE64;
use crate::value::Value;

/// Longest rendering placed in an error message; large documents would
/// otherwise produce megabyte-sized errors.
const MAX_RENDERED_CHARS: usize = 16384;

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Int64(i) => write!(f, "{i}n"),
            Value::Float64(x) => write_float(f, *x),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::String(s) => write_quoted(f, s),
            Value::Bytes(b) => write!(f, "b\"{}\"", BASE64.encode(b)),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Object(fields) => {
                f.write_str("{")?;
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}: {value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_infinite() {
        f.write_str(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        write!(f, "{x}")
    }
}

pub(crate) fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    write!(f, "{}", serde_json::Value::from(s))
}

/// Renders anything displayable, cut off at a size fit for an error message.
pub(crate) fn for_error(item: &impl fmt::Display) -> String {
    let mut text = item.to_string();
    if text.len() > MAX_RENDERED_CHARS {
        let mut cut = MAX_RENDERED_CHARS;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("[...truncated]");
    }
    text
}
