//! Sandbox processor (to be written).
