//! Test databases (a fresh SQLite file or PostgreSQL database per test) and the real server.

pub mod app;
pub mod db;

pub use app::TestApp;
pub use db::TestDb;
