//! The ActiveSync commands (MS-ASCMD), one module each (Autodiscover's too), over the data
//! classes and the formats.

pub mod autodiscover;
pub mod find;
pub mod folders;
pub mod itemops;
pub mod mail;
pub mod meeting;
pub mod ping;
pub mod provision;
pub mod resolve;
pub mod search;
pub mod settings;
pub mod sync;
pub mod validatecert;
