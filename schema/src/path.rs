//! Human-readable paths into nested values (`.a.b[2]`), shared by every error
//! that has to point at the offending part of a value.

use std::fmt;

/// Runs `f` with `.key` appended to `path`, restoring `path` afterwards so a
/// single buffer serves a whole recursive walk.
pub(crate) fn in_field<R>(path: &mut String, key: &str, f: impl FnOnce(&mut String) -> R) -> R {
    in_segment(path, &format!(".{key}"), f)
}

/// Like [`in_field`], for the `index`-th array element (`[index]`).
pub(crate) fn in_index<R>(path: &mut String, index: usize, f: impl FnOnce(&mut String) -> R) -> R {
    in_segment(path, &format!("[{index}]"), f)
}

/// Like [`in_field`], appending any path segment such as `[]` (every element).
pub(crate) fn in_segment<R>(
    path: &mut String,
    segment: &str,
    f: impl FnOnce(&mut String) -> R,
) -> R {
    let len = path.len();
    path.push_str(segment);
    let result = f(path);
    path.truncate(len);
    result
}

/// Renders "at path .a.b", or "at the top level" for the empty root path.
pub(crate) struct At<'a>(pub &'a str);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("at the top level")
        } else {
            write!(f, "at path {}", self.0)
        }
    }
}
