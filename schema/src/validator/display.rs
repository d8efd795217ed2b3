//! Renders validators the way users write them (`v.object({a: v.string()})`),
//! so validation errors can be matched to the source code.

use std::fmt;

use super::Validator;
use crate::display::write_quoted;

impl fmt::Display for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validator::Null => f.write_str("v.null()"),
            Validator::Float64 => f.write_str("v.float64()"),
            Validator::Int64 => f.write_str("v.int64()"),
            Validator::CommitTs => f.write_str("v.commitTs()"),
            Validator::Boolean => f.write_str("v.boolean()"),
            Validator::String => f.write_str("v.string()"),
            Validator::Bytes => f.write_str("v.bytes()"),
            Validator::Any => f.write_str("v.any()"),
            Validator::Literal(value) => write!(f, "v.literal({value})"),
            Validator::Id(table) => {
                f.write_str("v.id(")?;
                write_quoted(f, table)?;
                f.write_str(")")
            }
            Validator::Array(element) => write!(f, "v.array({element})"),
            Validator::Object(fields) => {
                f.write_str("v.object({")?;
                for (i, (name, field)) in fields.iter().enumerate() {
                    let sep = if i > 0 { ", " } else { "" };
                    if field.optional {
                        write!(f, "{sep}{name}: v.optional({})", field.validator)?;
                    } else {
                        write!(f, "{sep}{name}: {}", field.validator)?;
                    }
                }
                f.write_str("})")
            }
            Validator::Record { keys, values } => write!(f, "v.record({keys}, {values})"),
            Validator::Union(members) => {
                f.write_str("v.union(")?;
                for (i, member) in members.iter().enumerate() {
                    write!(f, "{}{member}", if i > 0 { ", " } else { "" })?;
                }
                f.write_str(")")
            }
        }
    }
}
