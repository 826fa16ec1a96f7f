//! Unit tests of the domain: one test per rule of DOMAIN.md (named after it), the life cycles,
//! and the codec with its upcaster.

mod codec;
mod fixtures;
mod lifecycle;
mod rules;
