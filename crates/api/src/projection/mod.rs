//! Read models: tables built only from events, applied in global order with a checkpoint.

mod apply;
mod bulk;
mod network;
mod projector;
mod story;

pub use apply::{project, statements};
pub(crate) use bulk::drop_schema_objects;
pub use bulk::SCRATCH_CACHE_MIB;
pub use projector::{Projector, PROJECTION_VERSION, READ_MODEL_TABLES};
