//! One module per aggregate of DOMAIN.md.

pub mod cafe;
pub mod challenge;
pub mod charter;
pub mod doetank;
pub mod ideation;
pub mod member;
pub mod pilot;
pub mod reuse;
