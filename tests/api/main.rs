//! System tests over HTTP, compiled into one binary. Each test starts the real
//! server on port 0 with a fresh database, on SQLite and on PostgreSQL.

mod api_keys;
mod authorization;
mod edge;
mod identity;
mod system;
