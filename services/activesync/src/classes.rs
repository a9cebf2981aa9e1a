//! The data classes: stored objects as ActiveSync shows them, and a device's changes made
//! into them (MS-ASCAL, MS-ASCNTC, MS-ASEMAIL, MS-ASTASK, MS-ASNOTE).

pub mod calendar;
pub mod contacts;
pub mod email;
pub mod notes;
pub mod tasks;

#[cfg(test)]
mod odd_input;
