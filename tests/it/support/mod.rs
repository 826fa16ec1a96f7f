//! Test databases (a fresh SQLite file or PostgreSQL database per test), the real server, and a
//! WebSocket client for it.

pub mod app;
pub mod db;
pub mod process;
pub mod ws;

pub use app::TestApp;
pub use db::TestDb;
pub use process::ServerProcess;
pub use ws::WsClient;
