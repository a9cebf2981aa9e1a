//! The data classes: stored objects as ActiveSync shows them, and a device's changes made
//! into them (MS-ASCAL, MS-ASCNTC, MS-ASEMAIL, MS-ASTASK, MS-ASNOTE).

pub mod calendar;
pub mod contacts;
pub mod email;
pub mod notes;
pub mod tasks;

#[cfg(test)]
mod odd_input;

/// Why a device's item was not made into a stored object, or merged with one.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The device's data: a field missing or out of range (the item's Status 6).
    #[error("{0}")]
    Device(String),
    /// The stored object cannot take the change: the line editor cannot read it, or it is
    /// not of the folder's kind. The box's fault, not the device's (the item's Status 5).
    #[error("{0}")]
    Stored(&'static str),
}

impl From<&str> for ConvertError {
    fn from(why: &str) -> ConvertError {
        ConvertError::Device(why.to_string())
    }
}

impl From<String> for ConvertError {
    fn from(why: String) -> ConvertError {
        ConvertError::Device(why)
    }
}

impl From<ConvertError> for bureau_store::StoreError {
    fn from(e: ConvertError) -> bureau_store::StoreError {
        match e {
            ConvertError::Device(why) => bureau_store::StoreError::Invalid(why),
            ConvertError::Stored(why) => bureau_store::StoreError::Corrupt(why.to_string()),
        }
    }
}
