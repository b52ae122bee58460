//! System tests over HTTP, compiled into one binary. Each test starts the real
//! server on port 0 with a fresh database, on SQLite and on PostgreSQL.

mod account;
mod api_keys;
mod audit;
mod audit_coverage;
mod authorization;
mod billing;
mod clinical;
mod clinical_fhir;
mod consent;
mod credentials;
mod data_rights;
mod edge;
mod fhir_validator;
mod identity;
mod practice;
mod retention;
mod system;
