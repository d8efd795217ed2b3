//! Live queries over WebSocket, speaking Convex's sync protocol so that
//! `ConvexClient` and `ConvexReactClient` work unchanged. `hub` shares and
//! re-runs subscriptions as commits land, `index` finds the subscriptions a
//! commit touches, `session` is one client connection.

mod hub;
mod index;
pub mod protocol;
mod requests;
mod session;

pub use hub::SyncHub;
pub use requests::RequestLog;
pub use session::serve;
