//! In-memory repository (to be written).
