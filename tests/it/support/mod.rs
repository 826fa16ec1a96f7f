//! Test databases: a fresh SQLite file or a fresh PostgreSQL database per test.

pub mod db;

pub use db::TestDb;
