//! Failures of the system rather than of the function: a mutation that kept
//! conflicting, a server too busy to run a call. Convex reports them apart from
//! function errors, with a code clients and operators can match: over HTTP as
//! `503 {"code", "message"}`, and over the WebSocket by closing the connection
//! (code 1013, "try again later"), so that the client reconnects and re-sends
//! its unacknowledged mutations.

/// Convex's code for a conflict that outlasted every retry.
pub const OCC_CODE: &str = "OptimisticConcurrencyControlFailure";
/// Convex's code for a server too busy to start a call.
pub const TOO_MANY_REQUESTS: &str = "TooManyConcurrentRequests";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SystemError {
    /// Convex's wording; `table` is the table of the conflicting read, if known.
    #[error(
        "Documents read from or written to {} changed while this mutation was being run and on \
         every subsequent retry. See https://docs.convex.dev/error#1",
        describe_table(.table.as_deref())
    )]
    Occ { table: Option<String> },
    #[error("{message}")]
    Overloaded { code: &'static str, message: String },
}

fn describe_table(table: Option<&str>) -> String {
    table.map_or_else(|| "some table".to_owned(), |t| format!("the \"{t}\" table"))
}

impl SystemError {
    /// What Convex's test syscall `throwOverloaded` raises.
    pub fn busy() -> Self {
        SystemError::Overloaded { code: "Busy", message: "I'm a bit busy.".into() }
    }

    /// The CapitalCamelCase code clients see beside the message.
    pub fn code(&self) -> &'static str {
        match self {
            SystemError::Occ { .. } => OCC_CODE,
            SystemError::Overloaded { code, .. } => code,
        }
    }
}
